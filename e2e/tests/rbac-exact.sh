#!/usr/bin/env bash
# Least privilege, proven from what really happened: after the end-to-end tests ran the
# operator under the chart's ServiceAccount, compare every request that ServiceAccount made
# (the API server's audit log) with what the chart's RBAC grants.
#   - a request the API server refused (403) means the chart grants too little;
#   - a granted (resource, verb) that no request used means the chart grants too much,
#     unless it is listed in EXEMPT below with the reason the tests cannot show its use.
# Run by `make test` after the Rust e2e tests (needs the env file sourced).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
: "${RBOX_E2E_KUBE_LOGS:?source the env file of e2e/env first (make test does)}"
AUDIT="$RBOX_E2E_KUBE_LOGS/audit.log"
SA="system:serviceaccount:rbox-e2e-system:rbox-e2e-rbox-operator"
rules=$(mktemp); trap 'rm -f "$rules"' EXIT
helm template rbox-e2e "$REPO_ROOT/charts/rbox-operator" --namespace rbox-e2e-system > "$rules"

/usr/bin/python3 - "$AUDIT" "$SA" "$rules" <<'PY'
import json, sys, glob
audit, sa, rendered = sys.argv[1:4]
# Granted but not provable by a request in these tests, each with its reason.
EXEMPT = {
    # Owner references with blockOwnerDeletion=true need `update` on the owner's finalizers
    # where the OwnerReferencesPermissionEnforcement admission plugin is on (e.g. OpenShift);
    # the plugin checks the permission without a request of ours reaching the audit log.
    ("mail.rbox.io", "mailclusters/finalizers", "update"),
    ("mail.rbox.io", "mailpools/finalizers", "update"),
    ("mail.rbox.io", "dovecotfleets/finalizers", "update"),
    # kube-runtime's event Recorder patches an Event (its series count) when the same Event
    # repeats within minutes; whether a test run repeats one depends on timing (a long-lived
    # environment showed it, a fresh one may not).
    ("events.k8s.io", "events", "patch"),
}
import re
docs = open(rendered).read().split("\n---")
granted = set()
import yaml  # Debian's python3-yaml (make test installs it)
def rules_of(doc):
    d = yaml.safe_load(doc)
    return d.get("rules", []) if d and d.get("kind") in ("ClusterRole", "Role") else []
for doc in docs:
    for r in rules_of(doc):
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                for v in r.get("verbs", []):
                    granted.add((g, res, v))
used, denied = set(), set()
for path in sorted(glob.glob(audit + "*")):
    for line in open(path, errors="replace"):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("user", {}).get("username") != sa or e.get("stage") != "ResponseComplete":
            continue
        ref = e.get("objectRef") or {}
        if not ref.get("resource"):
            continue  # non-resource URLs (discovery, /version)
        res = ref["resource"] + ("/" + ref["subresource"] if ref.get("subresource") else "")
        key = (ref.get("apiGroup", ""), res, e.get("verb"))
        code = e.get("responseStatus", {}).get("code")
        if code == 403:
            denied.add(key)
        else:
            used.add(key)
            # A server-side apply that creates its object is authorised as create (and as
            # patch); the audit log records it as a patch answered with 201 Created.
            if key[2] == "patch" and code == 201:
                used.add((key[0], key[1], "create"))
passed = failed = 0
def check(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1; print(f"ok   {name}", file=sys.stderr)
    else:
        failed += 1; print(f"FAIL {name}: {detail}", file=sys.stderr)
check(granted, "the chart's ClusterRole and Role were rendered", "no rules found")
check(used, "the audit log holds requests of the operator's ServiceAccount", f"none for {sa} in {audit}")
# A refusal of something that was allowed at other times is not missing RBAC: right after an
# API server restart (serial_apiserver test) the new server answers 403 until its RBAC cache
# is filled.
transient = denied & used
if transient:
    print(f"note: refused only transiently (RBAC cache warming after a restart): {sorted(transient)}", file=sys.stderr)
check(not (denied - used), "no request of the operator was refused (RBAC grants enough)", sorted(denied - used))
unused = sorted(k for k in granted - used - EXEMPT)
check(not unused, "every granted (group, resource, verb) was used (RBAC grants no more)", unused)
ungranted = sorted(k for k in used if k not in granted)
check(not ungranted, "every request used a granted rule", ungranted)
print(f"requests seen: {len(used)} distinct (group, resource, verb); granted: {len(granted)}", file=sys.stderr)
print(f"rbac-exact: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
