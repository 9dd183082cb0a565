#!/usr/bin/env python3
"""Checks the container settings the security docs promise.

The sigstream service of docker-compose.yml (as `docker-compose config`
resolves it) runs read-only, as a non-root user, without capabilities and
without privilege gain, and deploy/Dockerfile's final stage switches to a
non-root USER, and the image ships no load tool: sigstream-bench (tools/bench)
is neither copied into the build stage nor configured there, nor copied into
the final stage. No Docker engine runs on the build machines, so this checks
the files; deploy/README.md says how to check a running container.

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


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    compose_bin, compose_file, dockerfile = argv[1:]
    resolved = subprocess.run([compose_bin, "-f", compose_file, "config"], check=True,
                              capture_output=True, text=True).stdout
    service = yaml.safe_load(resolved)["services"]["sigstream"]
    with open(dockerfile, encoding="utf-8") as f:
        dockerfile_text = f.read()
    image_user = final_stage_user(dockerfile_text)

    checks = [
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
