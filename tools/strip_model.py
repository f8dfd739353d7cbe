#!/usr/bin/env python3
"""Writes the validation-relevant subset of a botocore service model to src/aws/models/.

Wharf embeds these files in its binary so that the build never needs botocore. The output stays a
subset of botocore's own format (same keys, same nesting), so one reader handles both, and it is
written one operation or shape per line so that a model upgrade reads as a small diff.

Usage: tools/strip_model.py ecs [--api-version 2014-11-13] [--out src/aws/models/ecs.json]
       tools/strip_model.py ec2 --operations CreateSecurityGroup,DescribeSecurityGroups,...
"""

import argparse
import gzip
import json
import pathlib
import sys

kRepoRoot = pathlib.Path(__file__).resolve().parent.parent

# Everything else (documentation, deprecation notes, HTTP bindings, examples) is for humans or
# for SDK code generators; validation, error mapping and the EC2/Query wire names need only
# these. JSON models have no locationName, queryName or flattened, so keeping them costs those
# nothing.
kNameKeys = ("locationName", "queryName", "flattened")
kShapeKeys = (
    "type", "members", "required", "enum", "min", "max", "member", "key", "value", "pattern",
    "sensitive", "document", "exception", "fault", "error", *kNameKeys,
)
kMemberKeys = ("shape", *kNameKeys)
kReferenceKeys = ("shape",)  # operation inputs, outputs and errors
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
            stripped[ref] = pick(stripped[ref], kReferenceKeys)
    if "errors" in stripped:
        stripped["errors"] = [pick(error, kReferenceKeys) for error in stripped["errors"]]
    return stripped


def keep_operations(model, names):
    """The model cut down to the named operations and the shapes they reach."""
    missing = [name for name in names if name not in model["operations"]]
    if missing:
        sys.exit(f"the model has no operation(s) {', '.join(missing)}")
    operations = {name: operation for name, operation in model["operations"].items()
                  if name in names}
    reached = set()
    pending = [ref["shape"] for operation in operations.values()
               for ref in [operation.get("input"), operation.get("output"),
                           *operation.get("errors", [])] if ref]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = model["shapes"][name]
        pending += [member["shape"] for member in shape.get("members", {}).values()]
        pending += [shape[ref]["shape"] for ref in ("member", "key", "value") if ref in shape]
    shapes = {name: shape for name, shape in model["shapes"].items() if name in reached}
    return {**model, "operations": operations, "shapes": shapes}


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
    parser.add_argument("--operations",
                        help="comma-separated operation names to keep (default: all), with "
                             "every shape they use; for models as large as EC2's")
    args = parser.parse_args()

    source = find_model(args.service, args.api_version)
    out = args.out or kRepoRoot / "src" / "aws" / "models" / f"{args.service}.json"
    model = load(source)
    if args.operations:
        model = keep_operations(model, {name for name in args.operations.split(",") if name})
    text = render(model)
    json.loads(text)  # never check in a file the C++ loader would choke on
    out.write_text(text, encoding="utf-8")
    print(f"{source} -> {out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
