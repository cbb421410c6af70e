#!/usr/bin/env bash
# Installs what the local services need into .state/ (idempotent; each part is skipped once present):
#   Kafka jars from Maven Central (infra/pom.xml), versitygw via `go install`, Apicurio Registry's Quarkus app.
# Downloads are cached by Maven (~/.m2) and Go (module cache) between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${BALLOTSTREAM_STATE_DIR:-.state}
VERSITYGW_VERSION=v1.7.0
APICURIO_VERSION=3.3.3
# Maven 3.8's built-in dependency plugin predates the goals we use: name the version.
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

need() { command -v "$1" >/dev/null 2>&1 || { echo "infra/install.sh: '$1' is not installed ($2)" >&2; exit 1; }; }
need java "Kafka 4 and Apicurio need Java 17+"
need mvn "used to fetch the Kafka and Apicurio jars"
need go "used to build versitygw"
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
[ "${java_major%%.*}" -ge 17 ] || { echo "infra/install.sh: Java 17+ needed, found $java_major" >&2; exit 1; }

mkdir -p "$STATE/bin" "$STATE/kafka" "$STATE/apicurio"

if [ ! -f "$STATE/kafka/libs/.complete" ]; then
  echo "installing Kafka jars -> $STATE/kafka/libs"
  rm -rf "$STATE/kafka/libs"
  mvn -q -B -f infra/pom.xml "$DEP_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$STATE/kafka/libs"
  touch "$STATE/kafka/libs/.complete"
else
  echo "Kafka jars: present"
fi

if [ ! -x "$STATE/bin/versitygw" ]; then
  echo "installing versitygw $VERSITYGW_VERSION -> $STATE/bin"
  GOBIN="$PWD/$STATE/bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
else
  echo "versitygw: present"
fi

app="$STATE/apicurio/apicurio-registry-app-$APICURIO_VERSION"
if [ ! -f "$app/quarkus-run.jar" ]; then
  echo "installing Apicurio Registry $APICURIO_VERSION -> $app"
  tmp=$(mktemp -d)
  # `copy` of the one artifact, not a dependency: resolving the app's graph would pull hundreds of jars.
  mvn -q -B "$DEP_PLUGIN:copy" -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$tmp"
  mkdir -p "$app.partial" && tar -xzf "$tmp"/*.tar.gz -C "$app.partial" && rm -rf "$tmp" "$app"
  mv "$app.partial" "$app"
else
  echo "Apicurio Registry: present"
fi

# Headless Chromium for tests/integration/test_catalog_browser.py (the Debian package; apt-get needs root).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (apt-get)"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  else
    echo "chromium: not installed and not root, skipped; the catalog browser test will be skipped" \
         "(as root: apt-get update && apt-get install -y chromium)"
  fi
else
  echo "chromium: present"
fi
