"""A Dagster logger that writes a run's log lines to a file, so the console keeps only Ballotstream's output."""

import logging
from pathlib import Path

import dagster as dg


@dg.logger(
    config_schema={"path": dg.Field(str, description="File the run's log lines are appended to."),
                   "log_level": dg.Field(str, default_value="DEBUG")},
    description="Append the run's log lines (step events, failures with their stack traces) to a file.",
)
def run_log_file(init_context: dg.InitLoggerContext) -> logging.Logger:
    path = Path(init_context.logger_config["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.Logger(f"ballotstream.run.{path.stem}", level=init_context.logger_config["log_level"])
    log.addHandler(handler)
    return log
