"""What each local service is: where it lives in .state/, how it is prepared, run and checked.

Lifecycle (start, wait, stop, status) is in ``infra.services``; this module only describes the services.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra import health
from pipelines.errors import ServiceUnavailable
from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("BALLOTSTREAM_STATE_DIR", ROOT / ".state")).resolve()
RUN, LOGS = STATE / "run", STATE / "logs"
APICURIO_VERSION = "3.3.3"
KAFKA_PORT, KAFKA_CONTROLLER_PORT = 19092, 19093
S3_PORT = 17070
REGISTRY_PORT, REGISTRY_MANAGEMENT_PORT = 18081, 18082


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    command: Callable[[Settings], list[str]]
    ready: Callable[[Settings], None]
    prepare: Callable[[], None] = lambda: None
    env: Callable[[Settings], dict[str, str]] = lambda s: {}
    timeout_s: float = 90.0

    @property
    def pid_file(self) -> Path:
        return RUN / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOGS / f"{self.name}.log"


# --- Kafka ---------------------------------------------------------------------------------------------------
KAFKA_HOME = STATE / "kafka"

_SERVER_PROPERTIES = f"""\
# Written by infra/services.py: a one-node KRaft cluster (broker + controller) on loopback.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT},CONTROLLER://127.0.0.1:{KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:{KAFKA_CONTROLLER_PORT}
log.dirs={KAFKA_HOME / "data"}
num.partitions=1
# Topics are declared in pipelines/contract/topics.py and created by `make up`; a typo must not create one.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=10485760
"""

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def _kafka_prepare() -> None:
    config = KAFKA_HOME / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "server.properties").write_text(_SERVER_PROPERTIES)
    (config / "log4j2.properties").write_text(_LOG4J2)
    if (KAFKA_HOME / "data" / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    subprocess.run(
        ["java", "-cp", str(KAFKA_HOME / "libs" / "*"), "kafka.tools.StorageTool", "format",
         "-t", cluster_id, "-c", str(config / "server.properties"), "--standalone"],
        check=True, capture_output=True, text=True,
    )


def _kafka_command(_: Settings) -> list[str]:
    return [
        "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={LOGS / 'kafka'}",
        f"-Dlog4j2.configurationFile={KAFKA_HOME / 'config' / 'log4j2.properties'}",
        "-cp", str(KAFKA_HOME / "libs" / "*"), "kafka.Kafka", str(KAFKA_HOME / "config" / "server.properties"),
    ]


# --- versitygw (S3) ------------------------------------------------------------------------------------------
S3_ROOT, S3_META, S3_IAM = STATE / "s3" / "data", STATE / "s3" / "meta", STATE / "s3" / "iam"


def _s3_prepare() -> None:
    S3_ROOT.mkdir(parents=True, exist_ok=True)
    S3_META.mkdir(parents=True, exist_ok=True)
    S3_IAM.mkdir(parents=True, exist_ok=True)


def _s3_command(_: Settings) -> list[str]:
    # --sidecar keeps metadata in files: the filesystem here may not allow user xattrs.
    # --iam-dir: a file-based accounts store, so read-only keys can be created (versitygw admin create-user).
    return [str(STATE / "bin" / "versitygw"), "--port", f"127.0.0.1:{S3_PORT}", "--iam-dir", str(S3_IAM),
            "posix", "--sidecar", str(S3_META), str(S3_ROOT)]


def _s3_env(settings: Settings) -> dict[str, str]:
    return {"ROOT_ACCESS_KEY": settings.s3_access_key_id, "ROOT_SECRET_KEY": settings.s3_secret_access_key}


# --- Apicurio Registry ---------------------------------------------------------------------------------------
APICURIO_HOME = STATE / "apicurio" / f"apicurio-registry-app-{APICURIO_VERSION}"


def registry_java() -> str:
    """A Java 21+ binary: Apicurio Registry 3.3 is compiled for Java 21, Kafka runs on the default 17.

    Taken from ``BALLOTSTREAM_REGISTRY_JAVA``, else the newest JDK under /usr/lib/jvm, else ``java``.
    """
    candidates = [os.environ.get("BALLOTSTREAM_REGISTRY_JAVA", "")]
    candidates += sorted((str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java")), key=_java_major, reverse=True)
    candidates.append(shutil.which("java") or "")
    for java in candidates:
        if java and _java_major(java) >= 21:
            return java
    raise ServiceUnavailable("the schema registry needs Java 21+; none found (set BALLOTSTREAM_REGISTRY_JAVA)")


def _java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-XshowSettings:properties", "-version"], capture_output=True, text=True,
                             timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    for line in out.splitlines():
        if "java.specification.version" in line:
            return int(line.split("=")[1].strip().split(".")[0])
    return 0


def _registry_command(_: Settings) -> list[str]:
    db = STATE / "apicurio" / "db" / "registry"
    return [
        registry_java(), "-Xms128m", "-Xmx512m",
        "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={REGISTRY_PORT}",
        "-Dquarkus.management.host=127.0.0.1", f"-Dquarkus.management.port={REGISTRY_MANAGEMENT_PORT}",
        # A file database, so registered schemas (and their ids) survive a restart.
        f"-Dapicurio.datasource.url=jdbc:h2:file:{db}",
        "-Dapicurio.datasource.jdbc.initial-size=2", "-Dapicurio.datasource.jdbc.min-size=2",
        "-jar", str(APICURIO_HOME / "quarkus-run.jar"),
    ]


SERVICES: tuple[Service, ...] = (
    Service("kafka", KAFKA_PORT, _kafka_command, health.kafka_ready, prepare=_kafka_prepare),
    Service("s3", S3_PORT, _s3_command, health.s3_ready, prepare=_s3_prepare, env=_s3_env),
    Service("registry", REGISTRY_PORT, _registry_command, health.registry_ready, timeout_s=120.0),
)

INSTALLED = {
    "kafka": KAFKA_HOME / "libs" / ".complete",
    "s3": STATE / "bin" / "versitygw",
    "registry": APICURIO_HOME / "quarkus-run.jar",
}


