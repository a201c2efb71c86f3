"""Static checks of the Terraform module in infra/, for machines without Terraform (perdure's
CI): parses every .tf file with python-hcl2, checks that each variable has a description and a
type and each validation an error message, that the outputs a pipeline needs exist, and that
every provisioner runs a script of the module that exists and is executable. Prints the
provisioners as JSON (resource, when, interpreter, script, the PERDURE_* variables its
environment sets) so perdure's tests run exactly those scripts against a real perdure.

Usage: python module.py [infra-dir]   (exit 1 with the problems found)
"""

import json
import os
import re
import sys

import hcl2


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def named(blocks):
    """hcl2's list of {"\"name\"": body} as (name, body) pairs."""
    for block in blocks or []:
        for name, body in block.items():
            if name != "__is_block__":
                yield unquote(name), body


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    parsed = {}
    for f in sorted(os.listdir(root)):
        if f.endswith(".tf"):
            with open(os.path.join(root, f)) as fh:
                parsed[f] = hcl2.load(fh)
    problems = []
    tests = os.path.join(root, "tests")
    for f in sorted(os.listdir(tests)) if os.path.isdir(tests) else []:
        if f.endswith(".tftest.hcl"):
            with open(os.path.join(tests, f)) as fh:
                runs = list(named(hcl2.load(fh).get("run")))
            if not runs:
                problems.append(f"tests/{f} has no run blocks")
    merged = {}
    for doc in parsed.values():
        for key, value in doc.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)

    variables = dict(named(merged.get("variable")))
    for name, body in variables.items():
        if not unquote(body.get("description", "")):
            problems.append(f"variable {name} has no description")
        if "type" not in body:
            problems.append(f"variable {name} has no type")
        for v in body.get("validation", []):
            if not unquote(v.get("error_message", "")) or "condition" not in v:
                problems.append(f"variable {name}: a validation without condition or error_message")
    outputs = dict(named(merged.get("output")))
    for name in ("deployment_id", "registered_arn", "function_version"):
        if name not in outputs:
            problems.append(f"output {name} missing")
    for name, body in outputs.items():
        if not unquote(body.get("description", "")):
            problems.append(f"output {name} has no description")
    providers = {}
    for block in merged.get("terraform", []):
        for req in block.get("required_providers", []):
            providers.update({k: v for k, v in req.items() if k != "__is_block__"})
    if "aws" not in providers or unquote(providers["aws"].get("source")) != "hashicorp/aws":
        problems.append("required_providers lacks hashicorp/aws")

    # Every var.X used is declared, every local.X defined.
    text = "\n".join(open(os.path.join(root, f)).read() for f in parsed)
    for used in sorted(set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", text))):
        if used not in variables:
            problems.append(f"var.{used} is used but not declared")
    defined = set()
    for block in merged.get("locals", []):
        defined.update(k for k in block if k != "__is_block__")
    for used in sorted(set(re.findall(r"\blocal\.([A-Za-z0-9_]+)", text))):
        if used not in defined:
            problems.append(f"local.{used} is used but not defined")

    env_of_locals = {}
    for block in merged.get("locals", []):
        for k, v in block.items():
            if isinstance(v, dict):
                env_of_locals[k] = sorted(x for x in v if x.startswith("PERDURE_"))

    def env_names(expr, resource_body):
        expr = str(expr)
        names = set(re.findall(r"\b(PERDURE_[A-Z_]+)\b", expr))
        for local, keys in env_of_locals.items():
            if f"local.{local}" in expr:
                names.update(keys)
        if "self.input" in expr:
            names.update(env_names(resource_body.get("input", ""), resource_body))
        return names

    provisioners = []
    for rtype, resources in named(merged.get("resource")):
        for rname, body in named([resources]):
            for kind, p in named(body.get("provisioner", [])):
                if kind != "local-exec":
                    problems.append(f"{rtype}.{rname}: provisioner {kind} (only local-exec is expected)")
                    continue
                command = unquote(p["command"]).replace("${path.module}", root)
                if not (os.path.isfile(command) and os.access(command, os.X_OK)):
                    problems.append(f"{rtype}.{rname}: command {command} is not an executable script of the module")
                provisioners.append({
                    "resource": f"{rtype}.{rname}",
                    "when": unquote(p.get("when", "create")),
                    "interpreter": [unquote(a) for a in p.get("interpreter", ["/bin/sh", "-c"])],
                    "script": command,
                    "environment": sorted(env_names(p.get("environment", ""), body)),
                })
    if not provisioners:
        problems.append("no provisioners found")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    json.dump({"variables": sorted(variables), "outputs": sorted(outputs), "provisioners": provisioners}, sys.stdout, indent=1)
    print()


main()
