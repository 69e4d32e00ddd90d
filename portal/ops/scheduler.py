"""The timed jobs, run by one process (``flask ops scheduler``), each job a ``flask`` command in a
child process with a time limit, so a crash or a leak in one run never stops the others.

The schedule is ``PORTAL_SCHEDULE``: comma-separated ``<command>@<seconds>`` or
``<command>@daily`` (once per Tokyo day, also at start when it has not run yet that day). Commands
whose group this app does not have (a feature not installed) are skipped with one log line. Every
job is idempotent, so an overlap with cron or a second scheduler adds nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

log = logging.getLogger("portal.scheduler")
TOKYO = ZoneInfo("Asia/Tokyo")

DEFAULT_SCHEDULE = "notices run-scheduled@300,push deliver@60,booking remind@900,points daily@daily"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Job:
    command: tuple[str, ...]
    every: int | None  # seconds; None: daily
    last_run: float = field(default=0.0)
    last_day: str | None = None

    @property
    def name(self) -> str:
        return " ".join(self.command)

    def due(self, now: float) -> bool:
        if self.every is None:
            return self.last_day != datetime.now(TOKYO).date().isoformat()
        return now - self.last_run >= self.every


def parse(spec: str) -> list[Job]:
    jobs = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        command, _, every = item.rpartition("@")
        if not command:
            raise ValueError(f"PORTAL_SCHEDULE: {item!r} is not <command>@<seconds|daily>")
        jobs.append(Job(tuple(command.split()), None if every == "daily" else int(every)))
    return jobs


def available(jobs: list[Job], commands: dict) -> list[Job]:
    kept = []
    for job in jobs:
        group = commands.get(job.command[0])
        sub = getattr(group, "commands", {})
        if group is None or (len(job.command) > 1 and job.command[1] not in sub):
            log.info("scheduler: %s is not installed here; skipped", job.name, extra={"job": job.name})
            continue
        kept.append(job)
    return kept


def run_job(job: Job, timeout: int) -> int:
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - our own flask commands, no shell
            [sys.executable, "-m", "flask", "--app", "wsgi", *job.command],
            cwd=ROOT,
            timeout=timeout,
            capture_output=True,
            text=True,
            check=False,
        )
        code = done.returncode
        summary = (done.stdout.strip().splitlines() or [""])[0][:200]
    except subprocess.TimeoutExpired:
        code, summary = -1, "timed out"
    level = logging.INFO if code == 0 else logging.ERROR
    log.log(
        level,
        "scheduler: %s exited %s in %.1fs: %s",
        job.name,
        code,
        time.monotonic() - started,
        summary,
        extra={"job": job.name, "event": "job-finished", "status": code},
    )
    return code


def loop(jobs: list[Job], *, once: bool = False, timeout: int = 600, tick: float = 1.0) -> None:
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler: %s", ", ".join(f"{j.name}@{j.every or 'daily'}" for j in jobs))
    while not stopping:
        for job in jobs:
            if stopping or not job.due(time.monotonic()):
                continue
            code = run_job(job, timeout)
            job.last_run = time.monotonic()
            if job.every is None and code == 0:
                job.last_day = datetime.now(TOKYO).date().isoformat()
        if once:
            return
        time.sleep(tick)
    log.info("scheduler: stopped")


def schedule_from_env() -> list[Job]:
    return parse(os.environ.get("PORTAL_SCHEDULE") or DEFAULT_SCHEDULE)
