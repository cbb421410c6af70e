"""Who may read Kafka: the subscriber principal's SCRAM credential and ACLs on the local broker, idempotent.

The subscriber (``User:<BALLOTSTREAM_KAFKA_SUBSCRIBER_USERNAME>``) connects to the SASL/SCRAM-SHA-512 listener
(infra/local_services.py) and may READ and DESCRIBE the public topics and READ consumer groups whose names start
with ``BALLOTSTREAM_KAFKA_SUBSCRIBER_GROUP_PREFIX``: nothing else. The dead-letter topic is not public (it holds raw
rejected input), and no principal but the pipeline's may write anywhere. The credential is set at run time
through the Admin API (AlterUserScramCredentials), so a broker whose storage was formatted before this listener
existed needs no reformat.
"""

from __future__ import annotations

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from pipelines.contract import topics
from pipelines.errors import ServiceUnavailable
from pipelines.kafka.admin import admin_client
from pipelines.kafka.clients import kafka_errors
from pipelines.settings import Settings

# Everything a downstream app may read; the dead-letter topic is deliberately absent.
PUBLIC_TOPICS: tuple[topics.TopicSpec, ...] = (*topics.EVENT_TOPICS, topics.RELEASES)


def principal(settings: Settings) -> str:
    return f"User:{settings.kafka_subscriber_username}"


def subscriber_acls(settings: Settings) -> set[ACL]:
    """The subscriber's complete grant for this environment's topics (``BALLOTSTREAM_TOPIC_PREFIX`` applied)."""
    who, allow = principal(settings), ACLPermissionType.ALLOW
    grant = {
        ACL(who, "*", operation, allow, ResourcePattern(ResourceType.TOPIC, settings.topic(spec.name)))
        for spec in PUBLIC_TOPICS
        for operation in (ACLOperation.READ, ACLOperation.DESCRIBE)
    }
    grant.add(ACL(who, "*", ACLOperation.READ, allow, ResourcePattern(
        ResourceType.GROUP, settings.kafka_subscriber_group_prefix, ACLResourcePatternType.PREFIXED)))
    return grant


def _principal_filter(settings: Settings) -> ACLFilter:
    return ACLFilter(principal(settings), None, ACLOperation.ANY, ACLPermissionType.ANY,
                     ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))


def _ours(acl: ACL, settings: Settings) -> bool:
    """An ACL this environment manages: on one of its declared topics, or on any non-topic resource.

    Topic ACLs of other environments (other ``BALLOTSTREAM_TOPIC_PREFIX`` values) are theirs to manage.
    """
    if acl.resource_pattern.resource_type != ResourceType.TOPIC:
        return True
    return acl.resource_pattern.resource_name in {settings.topic(spec.name) for spec in topics.ALL_TOPICS}


def live_acls(settings: Settings) -> set[ACL]:
    """The subscriber's ACLs as the broker holds them (every resource, every environment)."""
    admin = admin_client(settings)
    try:
        with kafka_errors(settings):
            found, _ = admin.describe_acls(_principal_filter(settings))  # raises on an error answer
    finally:
        admin.close()
    return set(found)


def ensure_subscriber(settings: Settings) -> list[str]:
    """Set the subscriber's SCRAM credential and make its ACLs exactly :func:`subscriber_acls`.

    Returns:
        One line for the credential, one for the ACLs (granted, removed, unchanged).

    Raises:
        ServiceUnavailable: Kafka does not answer, or refused a change (e.g. a broker started without the
            authorizer: restart it with ``make down && make up``).
    """
    wanted, live = subscriber_acls(settings), live_acls(settings)
    stale = {a for a in live if _ours(a, settings) and a not in wanted}
    missing = wanted - live
    admin = admin_client(settings)
    try:
        with kafka_errors(settings):
            # Always upserted: the password setting may have changed, and the broker only keeps a salted hash.
            errors = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
                settings.kafka_subscriber_username, ScramMechanism.SCRAM_SHA_512, settings.kafka_subscriber_password)])
            if missing:
                created = admin.create_acls(list(missing))
                if created.get("failed"):
                    raise ServiceUnavailable(f"Kafka refused ACLs: {created['failed']}")
            if stale:
                admin.delete_acls([_exact_filter(a) for a in stale])
    finally:
        admin.close()
    if any(errors.values()):
        raise ServiceUnavailable(f"Kafka refused the subscriber's SCRAM credential: {errors}")
    who = principal(settings)
    return [f"kafka {who}: SCRAM-SHA-512 credential set",
            f"kafka {who}: {len(wanted)} ACLs ({len(missing)} granted, {len(stale)} removed)"]


def _exact_filter(acl: ACL) -> ACLFilter:
    pattern = acl.resource_pattern
    return ACLFilter(acl.principal, acl.host, acl.operation, acl.permission_type,
                     ResourcePatternFilter(pattern.resource_type, pattern.resource_name, pattern.pattern_type))


def remove_topic_acls(settings: Settings) -> None:
    """Delete the subscriber's ACLs on this environment's topics (tests clean up their own prefix with it)."""
    mine = [a for a in live_acls(settings) if a.resource_pattern.resource_type == ResourceType.TOPIC
            and _ours(a, settings)]
    if not mine:
        return
    admin = admin_client(settings)
    try:
        with kafka_errors(settings):
            admin.delete_acls([_exact_filter(a) for a in mine])
    finally:
        admin.close()
