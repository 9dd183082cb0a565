#!/usr/bin/env python3
"""Checks the container settings the security docs promise.

The sigstream service of docker-compose.yml (as `docker-compose config`
resolves it) runs read-only, as a non-root user, without capabilities and
without privilege gain, and deploy/Dockerfile's final stage switches to a
non-root USER, and the image ships no load tool: sigstream-bench (tools/bench)
is neither copied into the build stage nor configured there, nor copied into
the final stage. No Docker engine runs on the build machines, so this checks
the files; deploy/README.md says how to check a running container. It also
checks the three-node NATS JetStream cluster the compose file runs: routes
between the nodes, a volume each, every node given to the instances, and
three replicas.

Usage: check_container.py DOCKER_COMPOSE COMPOSE_FILE DOCKERFILE
"""
import subprocess
import sys

import yaml


def final_stage_user(dockerfile_text):
    user = None
    for raw in dockerfile_text.splitlines():
        line = raw.strip()
        if line.upper().startswith("FROM "):
            user = None  # each stage starts as root again
        elif line.upper().startswith("USER "):
            user = line.split(None, 1)[1].strip()
    return user


def ships_no_load_tool(dockerfile_text):
    # Logical lines: a RUN continued with backslashes is one instruction.
    text = dockerfile_text.replace("\\\n", " ")
    copies = [line for line in text.splitlines() if line.strip().upper().startswith("COPY ")]
    copies_it = any("sigstream-bench" in line or "tools/" in line for line in copies)
    return not copies_it and "-DSIGSTREAM_BENCH=OFF" in text


def is_root(user):
    name = str(user).split(":", 1)[0].strip()
    return name in ("", "0", "root")


def nats_cluster_checks(services):
    """Three NATS nodes as one JetStream cluster, each with its own volume,
    and the instances given every node and three replicas (issue 13)."""
    names = ["nats1", "nats2", "nats3"]
    nodes = [services.get(n) for n in names]
    if any(n is None for n in nodes):
        return [("compose: three NATS services nats1, nats2, nats3", False)]

    def flag(command, name):
        args = command if isinstance(command, list) else str(command).split()
        return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None

    routes_ok, names_ok, js_ok, volumes = True, True, True, set()
    for name, node in zip(names, nodes):
        command = node.get("command") or []
        js_ok &= "-js" in command
        names_ok &= flag(command, "--server_name") == name and flag(command, "--cluster_name") == "sigstream"
        routes = (flag(command, "--routes") or "").split(",")
        routes_ok &= sorted(routes) == sorted(f"nats://{n}:6222" for n in names)
        for v in node.get("volumes") or []:
            if (v.get("target") if isinstance(v, dict) else str(v).split(":")[1]) == "/data":
                volumes.add(v.get("source") if isinstance(v, dict) else str(v).split(":")[0])
    env = services["sigstream"].get("environment") or {}
    urls = sorted(str(env.get("SIGSTREAM_NATS_URL", "")).split(","))
    return [
        ("compose: three NATS services with JetStream on", js_ok),
        ("compose: each NATS node names itself and the cluster 'sigstream'", names_ok),
        ("compose: each NATS node routes to all three", routes_ok),
        ("compose: each NATS node keeps its data on a volume of its own", len(volumes) == 3),
        ("compose: the instances are given every NATS node", urls == sorted(f"nats://{n}:4222" for n in names)),
        ("compose: the stream and buckets on three replicas", str(env.get("SIGSTREAM_STREAM_REPLICAS")) == "3"),
    ]


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    compose_bin, compose_file, dockerfile = argv[1:]
    resolved = subprocess.run([compose_bin, "-f", compose_file, "config"], check=True,
                              capture_output=True, text=True).stdout
    services = yaml.safe_load(resolved)["services"]
    service = services["sigstream"]
    with open(dockerfile, encoding="utf-8") as f:
        dockerfile_text = f.read()
    image_user = final_stage_user(dockerfile_text)

    nats = nats_cluster_checks(services)
    checks = nats + [
        ("compose: read_only root filesystem", service.get("read_only") is True),
        ("compose: non-root user", "user" in service and not is_root(service["user"])),
        ("compose: all capabilities dropped", "ALL" in (service.get("cap_drop") or [])),
        ("compose: no-new-privileges",
         any(str(o).replace("=", ":") == "no-new-privileges:true" for o in service.get("security_opt") or [])),
        ("Dockerfile: final stage runs as a non-root USER", image_user is not None and not is_root(image_user)),
        ("Dockerfile: the image ships no load tool (sigstream-bench not copied, not configured)",
         ships_no_load_tool(dockerfile_text)),
    ]
    failed = 0
    for what, ok in checks:
        print(("ok    " if ok else "FAIL  ") + what)
        failed += 0 if ok else 1
    if failed:
        print(f"{failed} container check(s) failed", file=sys.stderr)
        return 1
    print("all container checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
