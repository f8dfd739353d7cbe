#!/usr/bin/env python3
"""Writes the validation-relevant subset of a botocore service model to src/aws/models/.

Wharf embeds these files in its binary so that the build never needs botocore. The output stays a
subset of botocore's own format (same keys, same nesting), so one reader handles both, and it is
written one operation or shape per line so that a model upgrade reads as a small diff.

Usage: tools/strip_model.py ecs [--api-version 2014-11-13] [--out src/aws/models/ecs.json]
"""

import argparse
import gzip
import json
import pathlib
import sys

kRepoRoot = pathlib.Path(__file__).resolve().parent.parent

# Everything else (documentation, deprecation notes, HTTP bindings, examples) is for humans or
# for SDK code generators; validation and error mapping need only these.
kShapeKeys = (
    "type", "members", "required", "enum", "min", "max", "member", "key", "value", "pattern",
    "sensitive", "document", "exception", "fault", "error",
)
kMemberKeys = ("shape",)
kOperationKeys = ("name", "input", "output", "errors")


def botocore_data_dir():
    try:
        import botocore
    except ImportError:
        sys.exit("strip_model.py needs botocore (pip install botocore) to read the source models")
    return pathlib.Path(botocore.__file__).parent / "data"


def find_model(service, api_version):
    service_dir = botocore_data_dir() / service
    if not service_dir.is_dir():
        sys.exit(f"botocore has no model for service {service!r}")
    versions = sorted(path.name for path in service_dir.iterdir() if path.is_dir())
    version = api_version or versions[-1]
    for name in ("service-2.json.gz", "service-2.json"):
        path = service_dir / version / name
        if path.exists():
            return path
    sys.exit(f"no service-2.json for {service} {version} (have: {', '.join(versions)})")


def load(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as stream:
        return json.load(stream)


def pick(mapping, keys):
    return {key: mapping[key] for key in keys if key in mapping}


def strip_shape(shape):
    stripped = pick(shape, kShapeKeys)
    if "members" in stripped:
        stripped["members"] = {
            name: pick(member, kMemberKeys) for name, member in stripped["members"].items()
        }
    for ref in ("member", "key", "value"):
        if ref in stripped:
            stripped[ref] = pick(stripped[ref], kMemberKeys)
    return stripped


def strip_operation(operation):
    stripped = pick(operation, kOperationKeys)
    for ref in ("input", "output"):
        if ref in stripped:
            stripped[ref] = pick(stripped[ref], kMemberKeys)
    if "errors" in stripped:
        stripped["errors"] = [pick(error, kMemberKeys) for error in stripped["errors"]]
    return stripped


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render(model):
    # Model order is kept: it is the order AWS lists enum values in its error messages.
    lines = ["{", f'"metadata":{compact(model["metadata"])},', '"operations":{']
    operations = [f"{compact(name)}:{compact(strip_operation(operation))}"
                  for name, operation in model["operations"].items()]
    lines.append(",\n".join(operations))
    lines += ["},", '"shapes":{']
    shapes = [f"{compact(name)}:{compact(strip_shape(shape))}"
              for name, shape in model["shapes"].items()]
    lines.append(",\n".join(shapes))
    lines += ["}", "}"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="botocore service name, e.g. ecs or ecr")
    parser.add_argument("--api-version", help="defaults to the newest botocore has")
    parser.add_argument("--out", type=pathlib.Path,
                        help="defaults to src/aws/models/<service>.json in this repository")
    args = parser.parse_args()

    source = find_model(args.service, args.api_version)
    out = args.out or kRepoRoot / "src" / "aws" / "models" / f"{args.service}.json"
    text = render(load(source))
    json.loads(text)  # never check in a file the C++ loader would choke on
    out.write_text(text, encoding="utf-8")
    print(f"{source} -> {out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
