"""Staff console: resident look-up for counters and the processing centre, activation codes,
staff management for admins."""
