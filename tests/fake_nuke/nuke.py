"""A stand-in for Foundry's ``nuke`` module (Nuke cannot be installed here): the one allowed
test double. It follows the documented Python API for exactly the calls the ActAnywhere
plugin makes, and behaves as Nuke does where the plugin could get it wrong:

- nodes and knobs (values, expressions ``{{parent.x}}``, ``[value parent.x]`` in file knobs,
  enumeration items), inputs, ``nuke.nodes.X(...)``, ``createNode`` (gizmos are built from
  their ``.gizmo`` file on the plugin path, ``onCreate`` runs), groups as context managers,
  ``root()`` (``name()`` is ``"Root"`` until the script is saved);
- a node created while a gizmo's button runs lands *inside* that gizmo, as in Nuke, unless
  the code says ``with nuke.root():``;
- ``execute`` renders Writes for real (OpenImageIO): Read (EXR, data and display windows kept,
  linear or raw only), Grade (``white``), Switch, Dot, Input/Output in groups;
- ``executeInMainThread`` queues the call for the test to ``_pump`` on the main thread, and
  refuses a call from the main thread (never do that in Nuke); ``message`` must be called
  on the main thread;
- ``ProgressTask``: the test presses its cancel with ``_press_cancel``;
- ``scriptSaveAs`` / ``scriptOpen`` keep each node's class, knob values and inputs (JSON, not
  the .nk syntax); a gizmo's internals are not saved, they come from its file again.

Test helpers start with ``_``.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
from contextlib import contextmanager

import numpy as np
import OpenImageIO as oiio

NUKE_VERSION_MAJOR = 15
NUKE_VERSION_MINOR = 1
NUKE_VERSION_STRING = "15.1v1"
env = {"gui": True, "NukeVersionMajor": 15, "ExecutablePath": "/fake/Nuke15.1"}
REPLACE = 1

_calls: queue.Queue = queue.Queue()
_messages: list[str] = []
_tasks: list[ProgressTask] = []
_plugin_path: list[str] = []
_menus: dict[str, Menu] = {}
_context = threading.local()
_executed: list[tuple[str, int, int]] = []
_load_warnings: list[str] = []


class _Expression:
    def __init__(self, text: str) -> None:
        self.text = text


# ------------------------------------------------------------------------------------ knobs
class Knob:
    kind = "Knob"

    def __init__(self, name: str, label: str = "", value=None) -> None:
        self._name, self._label = name, label or name
        self._value = self._default() if value is None else value
        self.node: Node | None = None
        self.flags: set[str] = set()
        self.tooltip_text = ""

    def _default(self):
        return ""

    def name(self) -> str:
        return self._name

    def label(self) -> str:
        return self._label

    def _evaluated(self):
        if isinstance(self._value, _Expression):
            return _expression(self.node, self._value.text)
        return self._value

    def value(self):
        return self._evaluated()

    def getValue(self):  # noqa: N802 - Nuke's naming
        return self.value()

    def setValue(self, value) -> bool:  # noqa: N802
        self._value = self._coerce(value)
        return True

    def _coerce(self, value):
        return value

    def setExpression(self, text: str) -> bool:  # noqa: N802
        self._value = _Expression(text)
        return True

    def hasExpression(self) -> bool:  # noqa: N802
        return isinstance(self._value, _Expression)

    def setVisible(self, visible: bool) -> None:  # noqa: N802
        (self.flags.discard if visible else self.flags.add)("INVISIBLE")

    def setEnabled(self, enabled: bool) -> None:  # noqa: N802
        (self.flags.discard if enabled else self.flags.add)("DISABLED")

    def enabled(self) -> bool:
        return "DISABLED" not in self.flags

    def setTooltip(self, text: str) -> None:  # noqa: N802
        self.tooltip_text = text

    def _saved(self):
        if isinstance(self._value, _Expression):
            return {"expr": self._value.text}
        return self._value


class String_Knob(Knob):  # noqa: N801
    kind = "String_Knob"

    def _coerce(self, value):
        return str(value)

    def evaluate(self) -> str:
        """The value with ``[value node.knob]`` substituted, as Tcl would."""
        return _tcl(self.node, str(self.value()))


class File_Knob(String_Knob):  # noqa: N801
    kind = "File_Knob"


class Text_Knob(String_Knob):  # noqa: N801
    kind = "Text_Knob"


class Multiline_Eval_String_Knob(String_Knob):  # noqa: N801
    """A text box of several lines (``addUserKnob`` type 43)."""

    kind = "Multiline_Eval_String_Knob"


class Tab_Knob(Knob):  # noqa: N801
    kind = "Tab_Knob"


class Int_Knob(Knob):  # noqa: N801
    kind = "Int_Knob"

    def _default(self):
        return 0

    def _coerce(self, value):
        return int(value)


class Double_Knob(Knob):  # noqa: N801
    kind = "Double_Knob"

    def _default(self):
        return 0.0

    def _coerce(self, value):
        return float(value)


class Boolean_Knob(Knob):  # noqa: N801
    kind = "Boolean_Knob"

    def _default(self):
        return False

    def _coerce(self, value):
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)


class Enumeration_Knob(Knob):  # noqa: N801
    """``value()`` is the item's text, ``getValue()`` its index (as in Nuke)."""

    kind = "Enumeration_Knob"

    def __init__(self, name: str, label: str = "", items=()) -> None:
        self._items = [str(i) for i in items]
        super().__init__(name, label, self._items[0] if self._items else "")

    def values(self) -> list[str]:
        return list(self._items)

    def setValues(self, items) -> None:  # noqa: N802
        self._items = [str(i) for i in items]
        if self._value not in self._items:
            self._value = self._items[0] if self._items else ""

    def _coerce(self, value):
        if isinstance(value, int):
            return self._items[value]
        if str(value) not in self._items:
            raise ValueError(f"{self._name}: no item {value!r} in {self._items}")
        return str(value)

    def getValue(self):  # noqa: N802
        return float(self._items.index(self._value)) if self._value in self._items else 0.0


class PyScript_Knob(Knob):  # noqa: N801
    kind = "PyScript_Knob"

    def __init__(self, name: str, label: str = "", script: str = "") -> None:
        super().__init__(name, label, script)

    def execute(self) -> None:
        """What pressing the button does: run its Python with thisNode/thisKnob set and the
        node's own group as the context for new nodes."""
        node = self.node
        with _this(node, self), (node if isinstance(node, Group) else _nothing()):
            exec(compile(self._value, f"<{node.name()}.{self._name}>", "exec"),
                 {"nuke": _module()})


KNOB_IDS = {1: String_Knob, 2: File_Knob, 3: Int_Knob, 4: Enumeration_Knob, 6: Boolean_Knob,
            7: Double_Knob, 20: Tab_Knob, 22: PyScript_Knob, 26: Text_Knob,
            43: Multiline_Eval_String_Knob}


# ------------------------------------------------------------------------------------ nodes
class Node:
    _counters: dict[str, int] = {}

    def __init__(self, cls: str, group: Group | None) -> None:
        self._class, self._group = cls, group
        self._knobs: dict[str, Knob] = {}
        self._inputs: list[Node | None] = []
        self._max_inputs = 1
        self.xy = [0, 0]
        self._user: list[str] = []  # user knobs, in order
        for knob in [String_Knob("name"), Boolean_Knob("disable"), String_Knob("label"),
                     String_Knob("onCreate"), String_Knob("knobChanged"),
                     String_Knob("help")]:
            self.addKnob(knob, user=False)
        self._name = ""

    def __repr__(self) -> str:
        return f"<{self._class} {self.fullName()}>"

    # names
    def setSelected(self, selected: bool) -> None:  # noqa: N802
        self._selected = bool(selected)

    def isSelected(self) -> bool:  # noqa: N802
        return getattr(self, "_selected", False)

    def Class(self) -> str:  # noqa: N802
        return self._class

    def name(self) -> str:
        return self._name

    def setName(self, name: str) -> None:  # noqa: N802
        self._name = name
        self._knobs["name"]._value = name

    def fullName(self) -> str:  # noqa: N802
        if self._group is None or isinstance(self._group, Root):
            return self._name
        return f"{self._group.fullName()}.{self._name}"

    # knobs
    def addKnob(self, knob: Knob, user: bool = True) -> None:  # noqa: N802
        knob.node = self
        self._knobs[knob.name()] = knob
        if user:
            self._user.append(knob.name())

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def __getitem__(self, name: str) -> Knob:
        if name not in self._knobs:
            raise NameError(f"knob {name} does not exist")
        return self._knobs[name]

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    # inputs
    def input(self, i: int) -> Node | None:
        return self._inputs[i] if i < len(self._inputs) else None

    def setInput(self, i: int, node: Node | None) -> bool:  # noqa: N802
        while len(self._inputs) <= i:
            self._inputs.append(None)
        self._inputs[i] = node
        return True

    def inputs(self) -> int:
        return len(self._inputs)

    def maxInputs(self) -> int:  # noqa: N802
        return self._max_inputs

    def dependent(self) -> list[Node]:
        group = self._group or root()
        return [n for n in group._nodes if self in n._inputs]

    # place
    def xpos(self) -> int:
        return self.xy[0]

    def ypos(self) -> int:
        return self.xy[1]

    def setXYpos(self, x: int, y: int) -> None:  # noqa: N802
        self.xy = [int(x), int(y)]

    def screenWidth(self) -> int:  # noqa: N802
        return 80

    def format(self) -> Format:
        """The node's output format (the display window of its first frame)."""
        return Format(*_image(self, self.firstFrame()).display)

    # range
    def firstFrame(self) -> int:  # noqa: N802
        return _range(self)[0]

    def lastFrame(self) -> int:  # noqa: N802
        return _range(self)[1]


class Format:
    def __init__(self, width: int, height: int) -> None:
        self._w, self._h = width, height

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h


class Group(Node):
    def __init__(self, cls: str, group: Group | None) -> None:
        super().__init__(cls, group)
        self._nodes: list[Node] = []

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def node(self, name: str) -> Node | None:
        return next((n for n in self._nodes if n.name() == name), None)

    def begin(self) -> Group:
        _stack().append(self)
        return self

    def end(self) -> None:
        _stack().pop()

    def __enter__(self) -> Group:
        return self.begin()

    def __exit__(self, *exc) -> None:
        self.end()


class Root(Group):
    def __init__(self) -> None:
        super().__init__("Root", None)
        self._name = "root"
        self.script = ""
        for knob in [Int_Knob("first_frame", value=1), Int_Knob("last_frame", value=100),
                     Enumeration_Knob("colorManagement", items=("Nuke", "OCIO")),
                     Enumeration_Knob("OCIO_config", items=("nuke-default", "aces_1.2",
                                                            "custom")),
                     File_Knob("customOCIOConfigPath"),
                     String_Knob("workingSpaceLUT", value="linear")]:
            self.addKnob(knob, user=False)

    def name(self) -> str:
        """The script's path, or "Root" while it has never been saved (as in Nuke)."""
        return self.script or "Root"

    def fullName(self) -> str:  # noqa: N802
        return "root"


_ROOT = [Root()]


def root() -> Root:
    return _ROOT[0]


def _stack() -> list[Group]:
    if not hasattr(_context, "groups"):
        _context.groups = []
    return _context.groups


def thisGroup() -> Group:  # noqa: N802
    stack = _stack()
    return stack[-1] if stack else root()


# the knobs each built-in class has (name -> knob factory)
CLASSES = {
    "Read": lambda: [File_Knob("file"), Int_Knob("first", value=1), Int_Knob("last", value=1),
                     Int_Knob("origfirst", value=1), Int_Knob("origlast", value=1),
                     String_Knob("colorspace", value="default"), Boolean_Knob("raw"),
                     Boolean_Knob("premultiplied"), Boolean_Knob("reformat"),
                     String_Knob("frame"), Enumeration_Knob("frame_mode", items=(
                         "start at", "offset")),
                     Enumeration_Knob("on_error", items=("error", "black", "checkerboard",
                                                         "nearest frame"))],
    "Write": lambda: [File_Knob("file"), Enumeration_Knob("file_type", items=(
        "exr", "dpx", "tiff", "png", "jpeg")), Enumeration_Knob("channels", items=(
            "rgb", "rgba", "alpha", "all")), String_Knob("colorspace", value="default"),
        Boolean_Knob("raw"), Enumeration_Knob("datatype", items=("16 bit half",
                                                                 "32 bit float")),
        Boolean_Knob("create_directories"), Boolean_Knob("autocrop")],
    "Grade": lambda: [Double_Knob("white", value=1.0)],
    "Switch": lambda: [Int_Knob("which")],
    "Dot": lambda: [],
    "Input": lambda: [Int_Knob("number")],
    "Output": lambda: [],
    "Group": lambda: [],
}
INPUTS = {"Read": 0, "Write": 1, "Grade": 1, "Switch": 2, "Dot": 1, "Input": 0, "Output": 1}


def _new(cls: str, group: Group, name: str | None = None) -> Node:
    if cls == "Group":
        node: Node = Group(cls, group)
    else:
        node = Node(cls, group)
    for knob in CLASSES[cls]():
        node.addKnob(knob, user=False)
    node._max_inputs = INPUTS.get(cls, 1)
    _name(node, group, name)
    group._nodes.append(node)
    return node


def _name(node: Node, group: Group, name: str | None) -> None:
    if name is None:
        taken = {n.name() for n in group._nodes}
        i = 1
        while f"{node.Class()}{i}" in taken:
            i += 1
        name = f"{node.Class()}{i}"
    node.setName(name)


def _set_knobs(node: Node, values: dict) -> None:
    for key, value in values.items():
        if key == "name":
            node.setName(value)
        elif key == "inputs":
            continue
        elif key in ("xpos", "ypos"):
            node.xy[0 if key == "xpos" else 1] = int(value)
        elif isinstance(value, dict) and "expr" in value:
            node[key].setExpression(value["expr"])
        else:
            node[key].setValue(value)


class _Nodes:
    """``nuke.nodes.Read(file=...)``: a node of that class in the current group, with knob
    values, not connected to the selection."""

    def __getattr__(self, cls: str):
        def make(**knobs):
            node = _new(cls, thisGroup()) if cls in CLASSES else _gizmo(cls, thisGroup())
            _set_knobs(node, knobs)
            return node
        return make


nodes = _Nodes()


def createNode(cls: str, knobs: str = "", inpanel: bool = True) -> Node:  # noqa: N802
    node = _new(cls, thisGroup()) if cls in CLASSES else _gizmo(cls, thisGroup())
    _on_create(node)
    return node


def _on_create(node: Node) -> None:
    script = node["onCreate"].value()
    if script:
        with _this(node, None):
            exec(compile(script, f"<{node.name()}.onCreate>", "exec"), {"nuke": _module()})


def toNode(name: str) -> Node | None:  # noqa: N802
    if name == "root":
        return root()
    group: Group = thisGroup()
    for part in name.split("."):
        found = group.node(part) if isinstance(group, Group) else None
        if found is None:
            return None
        group = found
    return group


def allNodes(filter: str | None = None, group: Group | None = None) -> list[Node]:  # noqa: A002,N802
    group = group or thisGroup()
    return [n for n in group._nodes if filter is None or n.Class() == filter]


def selectedNodes(filter: str | None = None) -> list[Node]:  # noqa: A002,N802
    """Selected nodes of the current group (Foundry: ``nuke.selectedNodes(filter=None)``)."""
    return [n for n in allNodes(filter) if n.isSelected()]


def delete(node: Node) -> None:
    group = node._group or root()
    group._nodes.remove(node)
    for other in group._nodes:
        other._inputs = [None if i is node else i for i in other._inputs]


@contextmanager
def _nothing():
    yield


@contextmanager
def _this(node, knob):
    prev = getattr(_context, "this", (None, None))
    _context.this = (node, knob)
    try:
        yield
    finally:
        _context.this = prev


def thisNode() -> Node:  # noqa: N802
    return getattr(_context, "this", (None, None))[0]


def thisKnob() -> Knob:  # noqa: N802
    return getattr(_context, "this", (None, None))[1]


def _user_sets(node: Node, knob: str, value) -> None:
    """What an artist changing a knob in the panel does: set it, then knobChanged runs."""
    node[knob].setValue(value)
    script = node["knobChanged"].value()
    if script:
        with _this(node, node[knob]):
            exec(compile(script, f"<{node.name()}.knobChanged>", "exec"), {"nuke": _module()})


def _module():
    import sys

    return sys.modules[__name__]


# --------------------------------------------------------------------------- expressions
def _lookup(node: Node | None, ref: str):
    owner, _, knob = ref.rpartition(".")
    target: Node | None
    if owner == "parent":
        target = node._group if node is not None else None
    elif owner in ("this", ""):
        target = node
    elif owner == "root":
        target = root()
    else:
        target = toNode(owner)
    if target is None or target.knob(knob) is None:
        raise ValueError(f"expression {ref!r}: no such knob")
    if knob == "name" and isinstance(target, Root):
        return target.name()
    return target[knob].value()


def _expression(node: Node | None, text: str):
    """Nuke expressions of the form ``parent.knob`` / ``this.knob`` / ``!parent.knob``."""
    text = text.strip()
    if text.startswith("!"):
        return 0 if _expression(node, text[1:]) else 1
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text) if "." in text else int(text)
    value = _lookup(node, text)
    return int(value) if isinstance(value, bool) else value


def _tcl(node: Node | None, text: str) -> str:
    return re.sub(r"\[value ([\w.]+)\]", lambda m: str(_lookup(node, m.group(1))), text)


# ------------------------------------------------------------------------ gizmo files (Tcl)
def _words(text: str) -> list:
    """Tcl words, with "\\n" marking the end of a command; quoted strings unescaped, braced
    ones kept verbatim; ``{{expr}}`` becomes an expression."""
    out: list = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            out.append("\n")
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#" and (not out or out[-1] == "\n"):
            while i < n and text[i] != "\n":
                i += 1
        elif c == "{":
            depth, j = 1, i + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            inner = text[i + 1 : j - 1]
            if inner.startswith("{") and inner.endswith("}"):
                out.append(_Expression(inner[1:-1]))
            else:
                out.append(("brace", inner))
            i = j
        elif c == '"':
            j, buf = i + 1, []
            while text[j] != '"':
                if text[j] == "\\":
                    nxt = text[j + 1]
                    buf.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _commands(text: str) -> list[list]:
    cmds, cur = [], []
    for w in _words(text):
        if w == "\n":
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(w)
    if cur:
        cmds.append(cur)
    return cmds


def _user_knob(spec: str) -> Knob:
    words = [w[1] if isinstance(w, tuple) else w for w in _words(spec) if w != "\n"]
    kind, name, rest = KNOB_IDS[int(words[0])], words[1], words[2:]
    label, items, script, flags, tooltip = "", (), "", set(), ""
    i = 0
    while i < len(rest):
        w = rest[i]
        if w == "l":
            label, i = rest[i + 1], i + 2
        elif w == "M":
            items = tuple(x[1] if isinstance(x, tuple) else x
                          for x in _words(rest[i + 1]) if x != "\n")
            i += 2
        elif w == "T":
            script, i = rest[i + 1], i + 2
        elif w == "t":
            tooltip, i = rest[i + 1], i + 2
        elif w == "R":
            i += 3
        elif w[:1] in "+-":
            if w[0] == "+":
                flags.add(w[1:])
            i += 1
        else:
            raise ValueError(f"addUserKnob {spec!r}: cannot read {w!r}")
    if kind is Enumeration_Knob:
        knob: Knob = Enumeration_Knob(name, label, items)
    elif kind is PyScript_Knob:
        knob = PyScript_Knob(name, label, script)
    elif kind is Text_Knob:
        knob = Text_Knob(name, label, script)
    else:
        knob = kind(name, label)
    knob.flags |= flags
    knob.tooltip_text = tooltip
    return knob


def _gizmo(cls: str, group: Group) -> Group:
    path = next((os.path.join(p, f"{cls}.gizmo") for p in _plugin_path
                 if os.path.isfile(os.path.join(p, f"{cls}.gizmo"))), None)
    if path is None:
        raise RuntimeError(f"{cls}: unknown command")
    with open(path) as fh:
        cmds = _commands(fh.read())
    node = Group(cls, group)
    node._max_inputs = 0
    stack: list[Node] = []
    variables: dict[str, Node] = {}
    inside = False
    for cmd in cmds:
        head = cmd[0]
        if head == "version":
            continue
        if head == "end_group":
            break
        if head == "push":
            stack.append(variables[cmd[1].lstrip("$")])
            continue
        if head == "set":
            variables[cmd[1]] = stack[-1]
            continue
        body = cmd[1][1] if isinstance(cmd[1], tuple) else ""
        if head == "Gizmo":
            for line in _commands(body):
                key, value = line[0], line[1] if len(line) > 1 else ""
                if key == "addUserKnob":
                    node.addKnob(_user_knob(value[1]))
                elif key == "inputs":
                    node._max_inputs = int(value)
                elif key in node._knobs:
                    _set_word(node, key, value)
            inside = True
            continue
        assert inside, f"{path}: {head} before the Gizmo block"
        child = _new(head, node)
        n_inputs = 0
        for line in _commands(body):
            key, value = line[0], line[1]
            if key == "inputs":
                n_inputs = int(value)
            else:
                _set_word(child, key, value)
        for i in range(n_inputs):  # input 0 is the top of the stack
            child.setInput(i, stack.pop())
        stack.append(child)
    _name(node, group, None)
    group._nodes.append(node)
    return node


def _set_word(node: Node, key: str, value) -> None:
    if key == "name":
        node.setName(value)
    elif key in ("xpos", "ypos"):
        node.xy[0 if key == "xpos" else 1] = int(value)
    elif isinstance(value, _Expression):
        node[key].setExpression(value.text)
    else:
        node[key].setValue(value[1] if isinstance(value, tuple) else value)


# ----------------------------------------------------------------------------- rendering
def _range(node: Node) -> tuple[int, int]:
    if node.Class() == "Read":
        return int(node["first"].value()), int(node["last"].value())
    if isinstance(node, Group) and not isinstance(node, Root):
        out = next(n for n in node._nodes if n.Class() == "Output")
        return _range(out)
    if node.Class() == "Input":
        src = node._group.input(int(node["number"].value()))
        return _range(src) if src else (root()["first_frame"].value(),
                                        root()["last_frame"].value())
    src = node.input(0)
    return _range(src) if src is not None else (root()["first_frame"].value(),
                                                root()["last_frame"].value())


def _frame_file(pattern: str, frame: int) -> str:
    pattern = re.sub(r"#+", lambda m: f"{frame:0{len(m.group(0))}d}", pattern)
    return re.sub(r"%0?(\d*)d", lambda m: f"{frame:0{int(m.group(1) or 1)}d}", pattern)


class _Image:
    def __init__(self, px: np.ndarray, channels: list[str], origin, display) -> None:
        self.px, self.channels, self.origin, self.display = px, channels, origin, display


def _image(node: Node | None, frame: int) -> _Image:
    if node is None:
        raise RuntimeError("input not connected")
    if node["disable"].value() and node.Class() != "Read":
        return _image(node.input(0), frame)
    cls = node.Class()
    if cls == "Read":
        path = _frame_file(node["file"].evaluate(), frame)
        if not node["raw"].value() and node["colorspace"].value() not in (
                "default", "linear", "default (linear)", "scene_linear"):
            raise NotImplementedError("the fake Read converts no colourspace (linear or raw)")
        inp = oiio.ImageInput.open(path)
        if inp is None:
            if node["on_error"].value() == "black":
                return _Image(np.zeros((1, 1, 4), np.float32), ["R", "G", "B", "A"], (0, 0),
                              (1, 1))
            raise RuntimeError(f"{node.name()}: Read error: {path}: No such file or directory")
        spec = inp.spec()
        px = np.asarray(inp.read_image(0, 0, 0, spec.nchannels, "float"))
        inp.close()
        return _Image(px, list(spec.channelnames), (spec.x, spec.y),
                      (spec.full_width, spec.full_height))
    if cls == "Grade":
        img = _image(node.input(0), frame)
        px = img.px.copy()
        rgb = [i for i, c in enumerate(img.channels) if c in "RGB"]
        px[..., rgb] *= float(node["white"].value())
        return _Image(px, img.channels, img.origin, img.display)
    if cls == "Switch":
        return _image(node.input(int(node["which"].value())), frame)
    if cls in ("Dot", "Output", "Write"):
        return _image(node.input(0), frame)
    if cls == "Input":
        return _image(node._group.input(int(node["number"].value())), frame)
    if isinstance(node, Group):
        return _image(next(n for n in node._nodes if n.Class() == "Output"), frame)
    raise NotImplementedError(f"the fake renders no {cls}")


def execute(node, first: int, last: int, incr: int = 1) -> None:
    """Render a Write for frames first..last on this (the main) thread."""
    if isinstance(node, str):
        node = toNode(node)
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("nuke.execute must run on the main thread")
    if node.Class() != "Write":
        raise RuntimeError(f"{node.name()}: cannot execute a {node.Class()}")
    _executed.append((node.name(), first, last))
    for frame in range(first, last + 1, incr):
        img = _image(node.input(0), frame)
        want = {"rgb": ["R", "G", "B"], "rgba": ["R", "G", "B", "A"], "alpha": ["A"]}.get(
            node["channels"].value(), img.channels)
        cols = [img.px[..., img.channels.index(c)] if c in img.channels
                else np.zeros(img.px.shape[:2], np.float32) for c in want]
        px = np.stack(cols, -1)
        path = _frame_file(node["file"].evaluate(), frame)
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            if not node["create_directories"].value():
                raise RuntimeError(f"{node.name()}: Can't open output file {path}: No such "
                                   "file or directory")
            os.makedirs(folder)
        h, w, c = px.shape
        fmt = "half" if node["datatype"].value() == "16 bit half" else "float"
        spec = oiio.ImageSpec(w, h, c, fmt)
        spec.channelnames = tuple(want)
        spec.x, spec.y = img.origin
        spec.full_x, spec.full_y = 0, 0
        spec.full_width, spec.full_height = img.display
        out = oiio.ImageOutput.create(path)
        if out is None or not out.open(path, spec):
            raise RuntimeError(f"{node.name()}: Can't open output file {path}")
        out.write_image(np.ascontiguousarray(px))
        out.close()


# -------------------------------------------------------------------------- threads and UI
def executeInMainThread(call, args=(), kwargs=None) -> None:  # noqa: N802
    if threading.current_thread() is threading.main_thread():
        raise RuntimeError("executeInMainThread called from the main thread")
    _calls.put((call, tuple(args), dict(kwargs or {})))


def _pump(timeout: float = 0.0) -> int:
    """The test's stand-in for Nuke's event loop: run the queued main-thread calls."""
    ran = 0
    try:
        item = _calls.get(timeout=timeout) if timeout else _calls.get_nowait()
        while True:
            call, args, kwargs = item
            call(*args, **kwargs)
            ran += 1
            item = _calls.get_nowait()
    except queue.Empty:
        return ran


def message(text: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("nuke.message must run on the main thread")
    _messages.append(str(text))


class ProgressTask:
    def __init__(self, name: str) -> None:
        self.name, self.messages, self.progress = name, [], 0
        self._cancelled = False
        _tasks.append(self)

    def setMessage(self, text: str) -> None:  # noqa: N802
        self.messages.append(text)

    def setProgress(self, percent: int) -> None:  # noqa: N802
        if not isinstance(percent, int):
            raise TypeError("setProgress takes an int")
        self.progress = percent

    def isCancelled(self) -> bool:  # noqa: N802
        return self._cancelled


def _press_cancel() -> None:
    for task in _tasks:
        task._cancelled = True


# -------------------------------------------------------------------------- plugins, menus
def pluginAddPath(path: str, addToSysPath: bool = True) -> None:  # noqa: N802,N803
    import sys

    if path not in _plugin_path:
        _plugin_path.insert(0, path)
    if addToSysPath and path not in sys.path:
        sys.path.insert(0, path)


def pluginPath() -> list[str]:  # noqa: N802
    return list(_plugin_path)


class Menu:
    def __init__(self, name: str) -> None:
        self.name, self.items = name, {}

    def addMenu(self, name: str, icon: str = "") -> Menu:  # noqa: N802
        return self.items.setdefault(name, Menu(name))

    def addCommand(self, name: str, command, shortcut: str = "", icon: str = "") -> None:  # noqa: N802
        parent = self
        *path, leaf = name.split("/")
        for part in path:
            parent = parent.addMenu(part)
        parent.items[leaf] = command

    def findItem(self, name: str):  # noqa: N802
        node = self
        for part in name.split("/"):
            node = node.items.get(part) if isinstance(node, Menu) else None
        return node


def menu(name: str) -> Menu:
    return _menus.setdefault(name, Menu(name))


# --------------------------------------------------------------------------------- scripts
def _dump(node: Node) -> dict:
    """A node as a script keeps it: a built-in node's knobs; a gizmo's user knobs only (its
    internals come from the .gizmo file when the script is opened)."""
    keys = ([k for k in node._knobs if k != "name"] if node.Class() in CLASSES
            else [*node._user, "disable", "label"])
    inputs = [n.name() if n else None for n in node._inputs]
    return {"class": node.Class(), "name": node.name(),
            "knobs": {k: node._knobs[k]._saved() for k in keys}, "inputs": inputs,
            "xy": node.xy}


def scriptSaveAs(path: str, overwrite: int = 1) -> None:  # noqa: N802
    data = {"root": {k: root()[k]._saved() for k in root()._knobs if k != "name"},
            "nodes": [_dump(n) for n in root()._nodes]}
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)
    root().script = os.path.abspath(path)


def scriptClear() -> None:  # noqa: N802
    _ROOT[0] = Root()


def scriptOpen(path: str) -> None:  # noqa: N802
    with open(path) as fh:
        data = json.load(fh)
    scriptClear()
    root().script = os.path.abspath(path)
    for key, value in data["root"].items():
        _set_knobs(root(), {key: value})
    made = {}
    for item in data["nodes"]:
        cls = item["class"]
        node = _new(cls, root(), item["name"]) if cls in CLASSES else _gizmo(cls, root())
        node.setName(item["name"])
        for key, value in item["knobs"].items():
            if node.knob(key) is None:
                continue
            try:
                _set_knobs(node, {key: value})
            except ValueError as exc:  # a menu item the gizmo's menu lacks: Nuke warns
                _load_warnings.append(str(exc))
        node.xy = item["xy"]
        made[item["name"]] = (node, item["inputs"])
    for node, inputs in made.values():
        for i, name in enumerate(inputs):
            if name:
                node.setInput(i, made[name][0])
    for node, _ in made.values():
        _on_create(node)
