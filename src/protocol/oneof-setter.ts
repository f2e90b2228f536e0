import protobuf from 'protobufjs';

// protobufjs's decoder records each oneof member it reads through the oneof's virtual setter, and the
// stock setter deletes every other member of the oneof, one `delete` per absent member of every Value
// (the cost is in BENCHMARKS.md, "Why the code is shaped so"). This setter deletes only the members
// that are actually present, which leaves the message exactly as the stock one does.
function presentOnlyOneofSetter(fieldNames: string[]): (this: Record<string, unknown>, name: string) => void {
  const members = new Set(fieldNames);
  return function setOneof(name) {
    const keys = Object.keys(this);
    for (let i = 0; i < keys.length; i++) if (keys[i] !== name && members.has(keys[i]!)) delete this[keys[i]!];
  };
}

function rebuildConstructorsWithOneofs(ns: protobuf.NamespaceBase): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type && nested.oneofsArray.length > 0) {
      nested.ctor = (protobuf.Type.generateConstructor(nested) as () => protobuf.Constructor<{}>)();
    }
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) rebuildConstructorsWithOneofs(nested);
  }
}

/**
 * Gives every message type of `root` that has a oneof a constructor with the present-only oneof setter.
 * protobufjs reads its private util.oneOfSetter when it builds a type's constructor, so the types get
 * fresh constructors built while ours is swapped in, and the shared protobufjs module is restored right
 * after (other users of protobufjs in the process keep the stock setter).
 */
export function usePresentOnlyOneofSetters(root: protobuf.Root): void {
  const util = protobuf.util as unknown as { oneOfSetter: unknown };
  const stock = util.oneOfSetter;
  util.oneOfSetter = presentOnlyOneofSetter;
  try {
    rebuildConstructorsWithOneofs(root);
  } finally {
    util.oneOfSetter = stock;
  }
}
