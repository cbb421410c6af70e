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
from urllib.parse import urlparse

from infra import health
from pipelines.errors import ServiceUnavailable
from pipelines.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("BALLOTSTREAM_STATE_DIR", ROOT / ".state")).resolve()
RUN, LOGS = STATE / "run", STATE / "logs"
APICURIO_VERSION = "3.3.3"


# The local services listen where the settings say clients connect (defaults: Kafka 19092, its controller 19093,
# the subscribers' SASL listener 19094, S3 17070, registry 18081 and its management port 18082), so a second
# instance for development is a matter of BALLOTSTREAM_STATE_DIR plus the address settings. The two ports no
# client connects to are the next ones up: controller = Kafka + 1, registry management = registry + 1.
def _port(address: str) -> int:
    return int(address.split(",")[0].strip().rpartition(":")[2])


def kafka_port(settings: Settings) -> int:
    return _port(settings.kafka_bootstrap_servers)


def kafka_subscriber_port(settings: Settings) -> int:
    return _port(settings.kafka_subscriber_bootstrap_servers)


def s3_port(settings: Settings) -> int:
    return urlparse(settings.s3_endpoint_url).port or 80


def registry_port(settings: Settings) -> int:
    return urlparse(settings.registry_url).port or 80


@dataclass(frozen=True)
class Service:
    name: str
    port: Callable[[Settings], int]
    command: Callable[[Settings], list[str]]
    ready: Callable[[Settings], None]
    prepare: Callable[[Settings], None] = lambda s: None
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


def server_properties(settings: Settings) -> str:
    """The broker's configuration: the pipeline's PLAINTEXT listener, the controller, and the subscribers' listener.

    Access control (README "Who may write"): the StandardAuthorizer refuses whatever no ACL allows. Clients of the
    loopback PLAINTEXT listener (the pipeline, tests, `make up` itself) and the controller listener are
    ``User:ANONYMOUS``, a super user, so they keep every right they had. The SUBSCRIBER listener authenticates
    with SCRAM-SHA-512; its principals get only the ACLs ``infra.kafka_access`` grants.
    """
    port, controller, subscriber = kafka_port(settings), kafka_port(settings) + 1, kafka_subscriber_port(settings)
    subscriber_host = settings.kafka_subscriber_bootstrap_servers.split(",")[0].strip().rpartition(":")[0]
    return f"""\
# Written by infra/local_services.py on every start: a one-node KRaft cluster (broker + controller) on loopback.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},SUBSCRIBER://127.0.0.1:{subscriber}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SUBSCRIBER://{subscriber_host}:{subscriber}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SUBSCRIBER:SASL_PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
# Subscribers authenticate with SCRAM; their credentials live in the cluster metadata (set by `make up`).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.subscriber.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.subscriber.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# The unauthenticated loopback listeners (pipeline, controller): full rights, as before access control.
super.users=User:ANONYMOUS
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


def _kafka_prepare(settings: Settings) -> None:
    config = KAFKA_HOME / "config"
    config.mkdir(parents=True, exist_ok=True)
    # Rewritten on every start, so an existing installation picks up new listeners; its storage is kept (the
    # subscriber's SCRAM credential is created at run time by `make up`, not at format time, for that reason).
    (config / "server.properties").write_text(server_properties(settings))
    (config / "log4j2.properties").write_text(_LOG4J2)
    if (KAFKA_HOME / "data" / "meta.properties").exists():
        return
    # As Kafka's own Uuid.randomUuid: never an id starting with "-", which StorageTool would read as an option
    # (a clean-clone CI run failed on one: 1 start in 64).
    cluster_id = "-"
    while cluster_id.startswith("-"):
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
VERSITYGW = STATE / "bin" / "versitygw"


def _s3_prepare(_: Settings) -> None:
    S3_ROOT.mkdir(parents=True, exist_ok=True)
    S3_META.mkdir(parents=True, exist_ok=True)
    S3_IAM.mkdir(parents=True, exist_ok=True)


def _s3_command(settings: Settings) -> list[str]:
    # --sidecar keeps metadata in files: the filesystem here may not allow user xattrs.
    # --iam-dir: a file-based accounts store, for the publisher's account and read-only keys (infra.s3_access).
    return [str(VERSITYGW), "--port", f"127.0.0.1:{s3_port(settings)}", "--iam-dir", str(S3_IAM),
            "posix", "--sidecar", str(S3_META), str(S3_ROOT)]


def _s3_env(settings: Settings) -> dict[str, str]:
    # The root account bypasses bucket policies: it is the administrator's, never the publisher's.
    return {"ROOT_ACCESS_KEY": settings.s3_admin_access_key_id, "ROOT_SECRET_KEY": settings.s3_admin_secret_access_key}


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


def _registry_command(settings: Settings) -> list[str]:
    db = STATE / "apicurio" / "db" / "registry"
    port = registry_port(settings)
    return [
        registry_java(), "-Xms128m", "-Xmx512m",
        "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={port}",
        "-Dquarkus.management.host=127.0.0.1", f"-Dquarkus.management.port={port + 1}",
        # A file database, so registered schemas (and their ids) survive a restart.
        f"-Dapicurio.datasource.url=jdbc:h2:file:{db}",
        "-Dapicurio.datasource.jdbc.initial-size=2", "-Dapicurio.datasource.jdbc.min-size=2",
        "-jar", str(APICURIO_HOME / "quarkus-run.jar"),
    ]


SERVICES: tuple[Service, ...] = (
    Service("kafka", kafka_port, _kafka_command, health.kafka_ready, prepare=_kafka_prepare),
    Service("s3", s3_port, _s3_command, health.s3_ready, prepare=_s3_prepare, env=_s3_env),
    Service("registry", registry_port, _registry_command, health.registry_ready, timeout_s=120.0),
)

INSTALLED = {
    "kafka": KAFKA_HOME / "libs" / ".complete",
    "s3": VERSITYGW,
    "registry": APICURIO_HOME / "quarkus-run.jar",
}


