#!/usr/bin/env bash
# The README's fleet section, as written: from a built component to a canary rollout and a rollback.
# Here it runs against a local fleet (tests/e2e/fleet/test_walkthrough.py runs this file); on AWS the same
# commands run once the "local only" lines are replaced by your credentials and region.
# Run it from the repository's root (it writes greengrass-build/ and fleet.json there).
set -euo pipefail
ROOT=${FLEET_ROOT:-/tmp/fanwatch-fleet}
rm -rf "$ROOT"  # the local control plane keeps its state in memory: a new fleet needs new cores

# --- local only: a fleet on this machine (3 Pis, the first one the canary), here in the background
fanwatch fleet local --root "$ROOT" --things 3 --canary fanwatch-canary=1 &
LOCAL_FLEET=$!
trap 'kill "$LOCAL_FLEET" 2>/dev/null; wait "$LOCAL_FLEET" || true' EXIT
until [ -f "$ROOT/fleet.env" ]; do sleep 0.5; done
source "$ROOT"/fleet.env

# --- the same on AWS and on the local fleet
fanwatch build --all                                  # what gdk component build runs: greengrass-build/
fanwatch fleet publish                                # fanwatch.Tachometer and fanwatch.EdgeFilter 1.0.0
cp deployments/fanwatch-simulated.json fleet.json     # on Pis with fans: deployments/fanwatch-gpio.json
fanwatch fleet deploy fleet.json --group fanwatch-fleet
fanwatch fleet status --group fanwatch-fleet

# a new version: build, publish (1.0.1: an existing version is never overwritten), name it in fleet.json
fanwatch build --all
fanwatch fleet publish
sed -i 's/"componentVersion": "1.0.0"/"componentVersion": "1.0.1"/' fleet.json
fanwatch fleet deploy fleet.json --group fanwatch-fleet --canary fanwatch-canary --soak 10m
fanwatch fleet status --group fanwatch-fleet
fanwatch fleet rollback --group fanwatch-fleet
