#!/usr/bin/python3
"""sesearch for many queries on one policy:

    sesearch-batch.py POLICY [TYPE...]

loads POLICY once (and the rules of the source TYPEs, which most queries name), then reads one query per line on
stdin (sesearch's own options, the subset check.sh uses: -A -T --dontaudit -s -t -c -p -ds
-dt; or "--bool NAME" for a boolean's default, "--type NAME" to know if a type exists), prints the rules as sesearch does (sorted, one per line), then a line "\\x1e RC".

check.sh runs about a hundred queries per policy; sesearch would load el9's policy (30 MB)
for each of them, which took minutes. The rules and their order are setools' own, the same
library and calls as /usr/bin/sesearch (setools 4.4).
"""
import argparse
import shlex
import sys

import setools


def parser():
    p = argparse.ArgumentParser(prog="sesearch-batch", add_help=False)
    p.add_argument("-A", action="store_true")
    p.add_argument("-T", action="store_true")
    p.add_argument("--dontaudit", action="store_true")
    p.add_argument("-s", dest="source")
    p.add_argument("-t", dest="target")
    p.add_argument("-c", dest="tclass")
    p.add_argument("-p", dest="perms")
    p.add_argument("-ds", action="store_false", dest="source_indirect")
    p.add_argument("-dt", action="store_false", dest="target_indirect")
    return p


def expand(x):
    return set(x.expand()) if isinstance(x, setools.policyrep.TypeAttribute) else {x}


class Cache:
    """The rules whose source includes one of the given types, found in one pass over the
    policy (about 1 s on el9). A query on those sources is then matched here, with
    TERuleQuery's semantics: indirect source/target = the expanded sets intersect, direct
    = the same type or attribute; a rule matches a class list if its class is in it and a
    permission list if it grants any of them."""

    def __init__(self, policy, sources):
        self.sources = {policy.lookup_type(t) for t in sources}
        self.rules = [r for r in policy.terules() if expand(r.source) & self.sources]

    def covers(self, policy, args):
        return args.source is not None and args.source_indirect is not None \
            and policy.lookup_type(args.source) in self.sources

    def run(self, policy, args, kinds):
        src = policy.lookup_type_or_attr(args.source)
        tgt = policy.lookup_type_or_attr(args.target) if args.target else None
        classes = set(args.tclass.split(",")) if args.tclass else None
        perms = set(args.perms.split(",")) if args.perms else None
        for c in classes or ():
            policy.lookup_class(c)
        found = []
        for r in self.rules:
            if r.ruletype not in kinds:
                continue
            if not (expand(r.source) & expand(src) if args.source_indirect else r.source == src):
                continue
            if tgt is not None and not (expand(r.target) & expand(tgt) if args.target_indirect
                                        else r.target == tgt):
                continue
            if classes is not None and str(r.tclass) not in classes:
                continue
            if perms is not None:
                try:
                    if not set(map(str, r.perms)) & perms:
                        continue
                except setools.exception.RuleUseError:  # type_transition: no permissions
                    continue
            found.append(r)
        return found


def run(policy, cache, args):
    kinds = []
    if args.A:
        kinds += [setools.TERuletype.allow, setools.TERuletype.allowxperm]
    if args.T:
        kinds.append(setools.TERuletype.type_transition)
    if args.dontaudit:
        kinds += [setools.TERuletype.dontaudit, setools.TERuletype.dontauditxperm]
    if cache.covers(policy, args):
        return [str(r) for r in sorted(cache.run(policy, args, kinds))]
    q = setools.TERuleQuery(policy, ruletype=kinds, source=args.source,
                            source_indirect=args.source_indirect, target=args.target,
                            target_indirect=args.target_indirect)
    if args.tclass:
        q.tclass = args.tclass.split(",")
    if args.perms:
        q.perms = args.perms.split(",")
    return [str(r) for r in sorted(q.results())]


def main():
    policy = setools.SELinuxPolicy(sys.argv[1])
    cache = Cache(policy, sys.argv[2:])
    p = parser()
    for line in sys.stdin:
        words = shlex.split(line)
        try:
            if words[:1] == ["--type"]:  # the type's name if the policy has it
                out, rc = [str(policy.lookup_type(words[1]))], 0
            elif words[:1] == ["--bool"]:  # seinfo -x -b NAME: "NAME: true|false"
                b = policy.lookup_boolean(words[1])
                out, rc = ["%s: %s" % (b, str(b.state).lower())], 0
            else:
                out, rc = run(policy, cache, p.parse_args(words)), 0
        except (Exception, SystemExit) as e:  # sesearch prints the error and exits 1
            out, rc = [str(e)], 1
        print("\n".join(out + ["\x1e %d" % rc]), flush=True)


if __name__ == "__main__":
    main()
