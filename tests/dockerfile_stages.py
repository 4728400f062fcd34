"""A small reader of the repository's Dockerfiles for tests that cannot build the images here
(no podman): the stages, their instructions, and the environment a stage's processes get.

Only what these Dockerfiles use: `\\` line continuations, `#` comment lines, `FROM X [AS name]`,
`ENV K=V ...` with `${K}` taken from the environment built so far, `ARG K[=default]`.
"""

import dataclasses
import re
import shlex


@dataclasses.dataclass
class Stage:
    """One build stage: its base (an image or an earlier stage's name) and its instructions."""

    base: str
    name: str
    instructions: list  # (INSTRUCTION, argument text), continuation lines joined.

    def args(self, instruction):
        """The argument texts of this stage's `instruction` lines, in order."""
        return [text for name, text in self.instructions if name == instruction.upper()]

    def arg_defaults(self):
        """{name: default} of the stage's ARG lines ('' where none is given)."""
        found = {}
        for text in self.args("ARG"):
            name, _, default = text.partition("=")
            found[name.strip()] = default.strip()
        return found


def instructions(text):
    """(INSTRUCTION, argument text) of a Dockerfile's text, continuation lines joined."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # A comment inside a continued instruction.
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    found = []
    for line in logical:
        name, _, rest = line.strip().partition(" ")
        found.append((name.upper(), rest.strip()))
    return found


def stages(text):
    """The Dockerfile's stages, in order; the ARGs before the first FROM are left out."""
    found = []
    for name, rest in instructions(text):
        if name == "FROM":
            match = re.match(r"^(\S+)(?:\s+AS\s+(\S+))?$", rest, re.IGNORECASE)
            found.append(Stage(match.group(1), match.group(2) or "", []))
        elif found:
            found[-1].instructions.append((name, rest))
    return found


def stage(text, name):
    """The stage called `name` ('' : the last one, what a build without --target gives)."""
    found = stages(text)
    if not name:
        return found[-1]
    for candidate in found:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no stage {name!r} in the Dockerfile (stages: {[s.name for s in found]})")


def _substitute(value, env):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def environment(text, name, base_env=None):
    """The environment variables the image of stage `name` sets (ENV lines of it and of the
    stages it is built FROM), on top of `base_env` (the base image's, e.g. {'PATH': ...})."""
    chain, current = [], stage(text, name)
    names = {s.name for s in stages(text)}
    while True:
        chain.append(current)
        if current.base not in names:
            break
        current = stage(text, current.base)
    env = dict(base_env or {})
    for each in reversed(chain):
        for line in each.args("ENV"):
            before = dict(env)  # Docker substitutes with the values from before the instruction.
            for item in shlex.split(line):
                key, _, value = item.partition("=")
                env[key] = _substitute(value, before)
    return env
