"""Runs the ``fabrik`` binary: finds it, hands it tokens, and turns its answers into data or
fabric-cicd's exceptions.

Tokens never go on the command line. On POSIX the child inherits two pipes named by
``FABRIK_TOKEN_PIPE=IN,OUT``: whenever fabrik needs a token (its first, one before the last
expires, or after a 401) it writes ``{"scopes": [...]}`` and this process answers with the
credential's ``get_token(scope)`` as ``{"token", "expires_on"}``. A credential whose tokens
live for minutes therefore works for a run of any length. Elsewhere (Windows) one token is
passed in ``FABRIC_TOKEN``.
"""

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from fabrik_cicd import constants
from fabrik_cicd._exceptions import (
    FailedPublishedItemStatusError,
    InputError,
    PublishError,
    TokenError,
)

logger = logging.getLogger("fabrik_cicd")

FABRIC_SCOPE = "https://api.fabric.microsoft.com/.default"
EXIT_INVALID_INPUT = 4
EXIT_LOCKED = 3
TOKEN_PIPE_ENV = "FABRIK_TOKEN_PIPE"
_EXE = "fabrik.exe" if os.name == "nt" else "fabrik"


def binary():
    """The ``fabrik`` binary: ``FABRIK_BIN``, else the one the wheel installed beside this
    interpreter's scripts, else the first on PATH."""
    explicit = os.environ.get("FABRIK_BIN")
    if explicit:
        return explicit
    candidates = [Path(sysconfig.get_path("scripts")) / _EXE, Path(sys.executable).parent / _EXE]
    try:
        candidates.append(Path(sysconfig.get_path("scripts", f"{os.name}_user")) / _EXE)
    except KeyError:
        pass
    for c in candidates:
        if c.is_file():
            return str(c)
    found = shutil.which(_EXE)
    if found:
        return found
    msg = "the fabrik binary was not found: install the fabrik-deploy wheel, or set FABRIK_BIN"
    raise FileNotFoundError(msg)


class Result:
    """What one run of the binary left: exit code, output, and the report it wrote (if any)."""

    def __init__(self, args, returncode, stdout, stderr, report):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.report = report

    @property
    def run_id(self):
        result = (self.report or {}).get("result") or {}
        return result.get("run_id")


def _serve_tokens(credential, requests_fd, answers_fd):
    """Answers the child's token requests until it closes its end."""
    with os.fdopen(requests_fd, "r", encoding="utf-8") as requests, os.fdopen(
        answers_fd, "w", encoding="utf-8"
    ) as answers:
        for line in requests:
            try:
                scopes = json.loads(line).get("scopes") or [FABRIC_SCOPE]
                token = credential.get_token(*scopes)
                answer = {"token": token.token, "expires_on": int(token.expires_on)}
                logger.debug("fabrik asked for a token; handed one valid until %s", answer["expires_on"])
            except Exception as e:  # noqa: BLE001 - the child reports it
                answer = {"error": f"{type(e).__name__}: {e}"}
            try:
                answers.write(json.dumps(answer) + "\n")
                answers.flush()
            except (BrokenPipeError, OSError):
                return


def _child_env(credential):
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")
    if logger.isEnabledFor(logging.DEBUG):
        env.setdefault("FABRIK_LOG", "debug")
    if credential is not None:
        # The credential given wins over whatever the environment holds.
        env.pop("FABRIC_TOKEN", None)
        env.pop(TOKEN_PIPE_ENV, None)
    return env


def run(args, credential=None, *, cwd=None, report=False):
    """Runs ``fabrik ARGS`` (plus ``--base-url`` when the constants point elsewhere) and
    returns a :class:`Result`; tokens come from ``credential`` when one is given."""
    cmd = [binary(), *args]
    base = constants.base_url()
    if base:
        cmd += ["--base-url", base]
    report_path = None
    if report:
        fd, report_path = tempfile.mkstemp(prefix="fabrik-report-", suffix=".json")
        os.close(fd)
        os.unlink(report_path)
        cmd += ["--report", report_path]
    env = _child_env(credential)
    logger.debug("running %s", " ".join(cmd))
    server = None
    try:
        if credential is None:
            proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        elif os.name == "posix":
            req_r, req_w = os.pipe()  # fabrik -> us
            ans_r, ans_w = os.pipe()  # us -> fabrik
            env[TOKEN_PIPE_ENV] = f"{ans_r},{req_w}"
            try:
                child = subprocess.Popen(
                    cmd, env=env, cwd=cwd, pass_fds=(ans_r, req_w),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )
            finally:
                os.close(ans_r)
                os.close(req_w)
            server = threading.Thread(target=_serve_tokens, args=(credential, req_r, ans_w), daemon=True)
            server.start()
            out, err = child.communicate()
            code = child.returncode
        else:
            try:
                token = credential.get_token(FABRIC_SCOPE)
            except Exception as e:
                raise TokenError(f"the credential failed: {e}", logger) from e
            env["FABRIC_TOKEN"] = token.token
            proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        data = None
        if report_path and os.path.exists(report_path):
            with open(report_path, encoding="utf-8") as f:
                data = json.load(f)
        return Result(cmd, code, out, err, data)
    finally:
        if server is not None:
            server.join(timeout=5)
        if report_path and os.path.exists(report_path):
            os.unlink(report_path)


def json_documents(text):
    """Every JSON document in ``text`` (fabrik prints a plan and a report one after the other)."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i] not in "{[":
            i += 1
        if i >= len(text):
            return docs
        try:
            doc, i = decoder.raw_decode(text, i)
            docs.append(doc)
        except ValueError:
            i += 1


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+Z\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s")


def _split_stderr(stderr):
    """fabrik's stderr as (warnings, errors, log lines). Warnings are forwarded to the log and
    errors go into the exception, so that nothing is shown twice; fabrik's own log lines
    (tracing, which repeats what the report says) are shown at DEBUG."""
    warnings, errors, logs = [], [], []
    block = errors
    for line in stderr.splitlines():
        if _LOG_LINE.match(line):
            block = logs
        elif line.startswith("warning:"):
            block = warnings
        elif line and not line[0].isspace():
            block = errors
        block.append(line)
    return "\n".join(warnings).strip(), "\n".join(errors).strip(), "\n".join(logs).strip()


def check(result, what):
    """Logs fabrik's warnings; raises fabric-cicd's exception type on failure, carrying
    fabrik's message (with file:line where fabrik gives one) and the run id."""
    warnings, errors, logs = _split_stderr(result.stderr)
    if warnings:
        logger.warning(warnings)
    if logs:
        logger.debug(logs)
    run_id = result.run_id
    if result.returncode == 0:
        return
    report = (result.report or {}).get("result") or {}
    lines = list(report.get("errors") or [])
    if report.get("rolled_back"):
        lines.append(f"rolled back {len(report['rolled_back'])} change(s)")
    for key, label in (("rollback_errors", "rollback failed"), ("left_in_place", "left in place")):
        for entry in report.get(key) or []:
            lines.append(f"{label}: {entry}")
    if errors and not any(errors in l for l in lines):
        lines.append(errors)
    message = "\n".join(lines) or result.stdout.strip() or f"fabrik exited with {result.returncode}"
    if run_id:
        message += f"\n(fabrik run id {run_id})"
    if result.returncode == EXIT_INVALID_INPUT:
        raise InputError(message, logger, run_id=run_id, exit_code=result.returncode)
    if report.get("errors"):
        raise PublishError(
            [(e.split(":", 1)[0], e) for e in report["errors"]], logger,
            run_id=run_id, exit_code=result.returncode, message=f"{what} failed: {message}",
        )
    raise FailedPublishedItemStatusError(f"{what} failed: {message}", logger, run_id=run_id,
                                         exit_code=result.returncode)
