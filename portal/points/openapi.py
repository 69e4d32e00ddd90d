"""The OpenAPI 3.1 document of the partner API (served at /api/points/openapi.json)."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(description: str, schema: dict | None = None, headers: dict | None = None) -> dict:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema or ERROR}},
    }
    if headers:
        out["headers"] = headers
    return out


COMMON = {
    "400": _resp("The request could not be understood"),
    "401": _resp("No valid access token"),
    "403": _resp("The token's scope does not allow this"),
    "429": _resp("Too many requests"),
}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Unique per write: a retry with the same key and body gets the same answer; "
    "the same key with another body is refused (409).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"^[\x21-\x7e]+$"},
}
MEMBER = {
    "name": "member_id",
    "in": "path",
    "required": True,
    "description": "The member's pseudonymous ID for your organisation (never the Individual Number).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 40},
}
ENTRY_RESULT = {
    "type": "object",
    "required": ["entry"],
    "properties": {"entry": {"$ref": "#/components/schemas/Entry"}},
}
POINTS_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["points"],
    "properties": {
        "points": {"type": "integer", "minimum": 1, "maximum": 100000},
        "reference": {"type": "string", "maxLength": 120, "description": "Your receipt or order number"},
    },
}


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, scope: str, responses: dict, **extra) -> dict:
    return {
        "summary": summary,
        "security": [{"partner": [scope]}],
        "responses": {**responses, **COMMON},
        **extra,
    }


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Minato City citizen points — partner API",
            "version": "1.0.0",
            "description": "Award and redeem citizen points (市民ポイント) for residents who joined your "
            "programme in the city portal. OAuth2 client credentials; every write needs an "
            'Idempotency-Key; errors are JSON {"error": {"code", "message"}}.',
        },
        "servers": [{"url": "/api/points"}],
        "paths": {
            "/oauth/token": {
                "post": {
                    "summary": "Get an access token (client credentials, HTTP Basic or form)",
                    "security": [],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["grant_type"],
                                    "properties": {
                                        "grant_type": {"const": "client_credentials"},
                                        "scope": {"type": "string"},
                                        "client_id": {"type": "string"},
                                        "client_secret": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _resp("A bearer token", {"$ref": "#/components/schemas/Token"}),
                        "400": _resp("Refused", {"$ref": "#/components/schemas/OAuthError"}),
                        "401": _resp(
                            "Unknown client or wrong secret", {"$ref": "#/components/schemas/OAuthError"}
                        ),
                        "429": _resp("Too many requests"),
                    },
                }
            },
            "/members/challenges": {
                "post": _op(
                    "A card challenge for your terminal to have the member's card sign",
                    "read",
                    {"201": _resp("The challenge", {"$ref": "#/components/schemas/Challenge"})},
                )
            },
            "/members/identify": {
                "post": _op(
                    "Find the member ID from a member QR code or a signed card challenge",
                    "read",
                    {
                        "200": _resp("The member", {"$ref": "#/components/schemas/Member"}),
                        "404": _resp("Unknown challenge"),
                        "409": _resp("The challenge was used"),
                        "410": _resp("The QR code or challenge expired"),
                    },
                    requestBody=_json_body(
                        {
                            "oneOf": [
                                {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["qr"],
                                    "properties": {
                                        "qr": {"type": "string", "minLength": 1, "maxLength": 400}
                                    },
                                },
                                {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["challenge", "certificate", "signature"],
                                    "properties": {
                                        "challenge": {"type": "string", "minLength": 1, "maxLength": 40},
                                        "certificate": {"type": "string", "contentEncoding": "base64"},
                                        "signature": {"type": "string", "contentEncoding": "base64"},
                                    },
                                },
                            ]
                        }
                    ),
                )
            },
            "/members/{member_id}/balance": {
                "get": _op(
                    "The member's points: spendable, pending, upcoming expiries, tier",
                    "read",
                    {
                        "200": _resp("The balance", {"$ref": "#/components/schemas/Balance"}),
                        "404": _resp("Unknown member"),
                    },
                    parameters=[MEMBER],
                )
            },
            "/members/{member_id}/transactions": {
                "get": _op(
                    "The member's entries made by your organisation, newest first",
                    "read",
                    {
                        "200": _resp("The entries", {"$ref": "#/components/schemas/Transactions"}),
                        "404": _resp("Unknown member"),
                    },
                    parameters=[
                        MEMBER,
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                    ],
                )
            },
            "/members/{member_id}/awards": {
                "post": _op(
                    "Award points (pending for your holding period, then spendable)",
                    "award",
                    {
                        "201": _resp("The earn entry", ENTRY_RESULT),
                        "404": _resp("Unknown member"),
                        "409": _resp("Idempotency-Key reused for another request"),
                    },
                    parameters=[MEMBER, IDEMPOTENCY],
                    requestBody=_json_body(POINTS_BODY),
                )
            },
            "/members/{member_id}/redemptions": {
                "post": _op(
                    "Redeem points (soonest-expiring first)",
                    "redeem",
                    {
                        "201": _resp("The redeem entry", ENTRY_RESULT),
                        "404": _resp("Unknown member"),
                        "409": _resp("Not enough points, or Idempotency-Key reused"),
                    },
                    parameters=[MEMBER, IDEMPOTENCY],
                    requestBody=_json_body(POINTS_BODY),
                )
            },
            "/entries/{entry_id}/reversal": {
                "post": _op(
                    "Reverse one of your entries: refund a redemption (scope redeem) "
                    "or withdraw an award (scope award)",
                    "award",
                    {
                        "201": _resp("The reversing entry", ENTRY_RESULT),
                        "404": _resp("Unknown entry"),
                        "409": _resp("Already reversed, not reversible, or the points were spent"),
                    },
                    parameters=[
                        {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                        IDEMPOTENCY,
                    ],
                    requestBody=_json_body(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"reason": {"type": "string", "maxLength": 200}},
                        }
                    ),
                )
            },
            "/coupons/use": {
                "post": _op(
                    "Use a partner-discount coupon shown by the resident (once)",
                    "redeem",
                    {
                        "200": _resp("The coupon is used", {"$ref": "#/components/schemas/CouponUse"}),
                        "403": _resp("The coupon is for another partner"),
                        "404": _resp("Unknown coupon"),
                        "409": _resp("Already used, or Idempotency-Key reused"),
                        "410": _resp("Expired"),
                    },
                    parameters=[IDEMPOTENCY],
                    requestBody=_json_body(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["code"],
                            "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 20}},
                        }
                    ),
                )
            },
        },
        "components": {
            "securitySchemes": {
                "partner": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/api/points/oauth/token",
                            "scopes": {
                                "read": "Identify members, read balances and your transactions",
                                "award": "Award points (and withdraw your awards)",
                                "redeem": "Redeem points, refund redemptions, use coupons",
                            },
                        }
                    },
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                },
                "OAuthError": {
                    "type": "object",
                    "properties": {
                        "error": {"type": ["string", "object"]},
                        "error_description": {"type": "string"},
                    },
                },
                "Token": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"const": "Bearer"},
                        "expires_in": {"type": "integer"},
                        "scope": {"type": "string"},
                    },
                },
                "Challenge": {
                    "type": "object",
                    "required": ["id", "purpose", "expires_in", "message"],
                    "properties": {
                        "id": {"type": "string"},
                        "purpose": {"const": "points_member"},
                        "expires_in": {"type": "integer"},
                        "message": {
                            "type": "string",
                            "description": "base64 of the exact bytes the card signs",
                        },
                    },
                },
                "Member": {
                    "type": "object",
                    "required": ["member_id"],
                    "properties": {"member_id": {"type": "string"}},
                },
                "Balance": {
                    "type": "object",
                    "required": ["member_id", "available", "pending", "tier", "expiries"],
                    "properties": {
                        "member_id": {"type": "string"},
                        "available": {"type": "integer", "minimum": 0},
                        "pending": {"type": "integer", "minimum": 0},
                        "tier": {"enum": ["standard", "silver", "gold", "platinum"]},
                        "expiries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["date", "points"],
                                "properties": {
                                    "date": {"type": "string", "format": "date"},
                                    "points": {"type": "integer"},
                                },
                            },
                        },
                    },
                },
                "Entry": {
                    "type": "object",
                    "required": [
                        "id",
                        "kind",
                        "points",
                        "at",
                        "status",
                        "reference",
                        "reverses",
                        "member_id",
                    ],
                    "properties": {
                        "id": {"type": "integer"},
                        "kind": {"enum": ["earn", "redeem", "expire", "reverse", "adjust"]},
                        "points": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"},
                        "status": {"enum": ["pending", "active"]},
                        "reference": {"type": ["string", "null"]},
                        "reverses": {"type": ["integer", "null"]},
                        "member_id": {"type": ["string", "null"]},
                    },
                },
                "Transactions": {
                    "type": "object",
                    "required": ["member_id", "entries"],
                    "properties": {
                        "member_id": {"type": "string"},
                        "entries": {"type": "array", "items": {"$ref": "#/components/schemas/Entry"}},
                    },
                },
                "CouponUse": {
                    "type": "object",
                    "required": ["code", "item", "used_at"],
                    "properties": {
                        "code": {"type": "string"},
                        "item": {"type": "string"},
                        "used_at": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    }
