"""The panel's buttons. Each returns at once; failures are one line in the panel and in
Blender's reports, never a traceback."""

from __future__ import annotations

import os

import bpy

from . import compat, generate, jobs, plate, props, strips
from .vendor.actanywhere.api import Takes, WorkerError
from .vendor.actanywhere.api import motion as motion_file
from .vendor.actanywhere.errors import ActAnywhereError


def _fail(op, settings, text: str) -> set[str]:
    line = " ".join(str(text).split())
    settings.status = f"error: {line}"
    op.report({"ERROR"}, f"ActAnywhere: {line}")
    return {"CANCELLED"}


def _selected(context):
    s = context.scene.actanywhere
    return s.takes[s.take_index] if 0 <= s.take_index < len(s.takes) else None


class ACTANYWHERE_OT_generate(bpy.types.Operator):
    """Make a new take of the active image strip with a new background (runs in the worker;
    Blender stays free)"""

    bl_idname = "actanywhere.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context) -> bool:
        return context.scene is not None

    def execute(self, context) -> set[str]:
        settings = context.scene.actanywhere
        try:
            take = generate.start(context.scene)
        except (ActAnywhereError, WorkerError) as exc:
            return _fail(self, settings, str(exc))
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback popup
            return _fail(self, settings, f"internal error: {type(exc).__name__}: {exc}")
        self.report({"INFO"}, f"ActAnywhere: {take.name} sent to the worker")
        return {"FINISHED"}


class ACTANYWHERE_OT_send_to_farm(bpy.types.Operator):
    """Export the active strip's take as a job bundle into the Farm Folder and submit it with
    Deadline Cloud's CLI where it is set up (else the command to submit it is shown); the
    take waits in the list as queued on the farm until its frames arrive (Refresh Takes)"""

    bl_idname = "actanywhere.send_to_farm"
    bl_label = "Send to Farm"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context) -> bool:
        return context.scene is not None

    def execute(self, context) -> set[str]:
        settings = context.scene.actanywhere
        try:
            bundle, _ = generate.send_to_farm(context.scene)
        except ActAnywhereError as exc:
            return _fail(self, settings, f"Send to farm: {exc}")
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback popup
            return _fail(self, settings, f"Send to farm: internal error: "
                         f"{type(exc).__name__}: {exc}")
        self.report({"INFO"}, f"ActAnywhere: exporting the farm bundle into {bundle}")
        return {"FINISHED"}


class ACTANYWHERE_OT_cancel(bpy.types.Operator):
    """Stop the active strip's running take (frames written so far are kept)"""

    bl_idname = "actanywhere.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context) -> bool:
        return bool(jobs.running(scene=context.scene.name))

    def execute(self, context) -> set[str]:
        runs = jobs.running(scene=context.scene.name)
        ed = compat.editor(context.scene)
        active = ed.active_strip.name if ed is not None and ed.active_strip else None
        run = next((r for r in runs if r.plate == active), runs[0])
        run.handle.cancel()
        context.scene.actanywhere.status = f"{run.take.name}: cancelling"
        return {"FINISHED"}


class ACTANYWHERE_OT_load_strip(bpy.types.Operator):
    """Show the selected take as a strip above its plate (again, if its strip was deleted)"""

    bl_idname = "actanywhere.load_strip"
    bl_label = "Load Strip"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context) -> bool:
        return _selected(context) is not None

    def execute(self, context) -> set[str]:
        take = _selected(context)
        strip = strips.add(context.scene, take)
        if strip is None:
            return _fail(self, context.scene.actanywhere,
                         f"{take.name}: no frames on disk in {take.folder}")
        strips.show_only(context.scene, take)
        context.scene.actanywhere.status = f"{take.name}: strip {strip.name!r}"
        return {"FINISHED"}


class ACTANYWHERE_OT_remove_take(bpy.types.Operator):
    """Take the selected take off the list; its folder and strip stay as they are"""

    bl_idname = "actanywhere.remove_take"
    bl_label = "Remove from List"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context) -> bool:
        take = _selected(context)
        return take is not None and take.folder not in jobs.RUNS

    def execute(self, context) -> set[str]:
        s = context.scene.actanywhere
        take = s.takes[s.take_index]
        name, folder = take.name, take.folder
        s.takes.remove(s.take_index)
        s.take_index = min(s.take_index, len(s.takes) - 1)
        s.status = f"{name} removed from the list; its files stay in {folder}"
        self.report({"INFO"}, f"ActAnywhere: {s.status}")
        return {"FINISHED"}


class ACTANYWHERE_OT_refresh(bpy.types.Operator):
    """Read the active strip's takes from its output folder (takes made elsewhere, or
    removed from the list, come back)"""

    bl_idname = "actanywhere.refresh"
    bl_label = "Refresh Takes"

    def execute(self, context) -> set[str]:
        scene, s = context.scene, context.scene.actanywhere
        try:
            strip = generate.plate_strip(scene)
            root = generate.take_root(scene, strip.name)
            seq = plate.sequence(strip)
        except ActAnywhereError as exc:
            return _fail(self, s, str(exc))
        known = {t.folder: t for t in s.takes}
        added, arrived = 0, []
        found = Takes(root).list()
        for take in found:
            entry = known.get(take.folder)
            if entry is None:
                entry, added = props.add_take(s, take, strip.name, seq), added + 1
                span = take.frame_range()
                if span is not None:  # the take's own range, placed on this plate's timeline
                    entry.timeline_start = seq.timeline_frame(span[0])
                    entry.first, entry.count = span[0], span[1] - span[0] + 1
            if entry.folder in jobs.RUNS:
                continue
            if jobs.refresh_entry(entry, take):
                arrived.append(entry)
        listed = {t.folder for t in found}
        for entry in [t for t in s.takes if t.status == "queued" and t.folder not in listed]:
            try:  # queued on the farm in a folder of its own (its shot's name)
                take = Takes(os.path.dirname(entry.folder)).get(entry.name)
            except OSError:
                take = None
            if take is not None and jobs.refresh_entry(entry, take):
                arrived.append(entry)
        for entry in arrived:  # the farm's frames came: shown as a strip, as a take done here
            if strips.add(scene, entry) is not None:
                strips.show_only(scene, entry)
        s.status = f"{len(found)} takes in {root} ({added} added to the list" + \
            (f", {len(arrived)} back from the farm)" if arrived else ")")
        return {"FINISHED"}


class ACTANYWHERE_OT_open_folder(bpy.types.Operator):
    """Open the selected take's folder in the file browser of the system"""

    bl_idname = "actanywhere.open_folder"
    bl_label = "Open Folder"

    @classmethod
    def poll(cls, context) -> bool:
        return _selected(context) is not None

    def execute(self, context) -> set[str]:
        bpy.ops.wm.path_open(filepath=_selected(context).folder)
        return {"FINISHED"}


class ACTANYWHERE_OT_report(bpy.types.Operator):
    """A line in Blender's reports, from code that runs outside an operator (the timer)"""

    bl_idname = "actanywhere.report"
    bl_label = "ActAnywhere Report"
    bl_options = {"INTERNAL"}

    message: bpy.props.StringProperty()
    level: bpy.props.StringProperty(default="ERROR")

    def execute(self, context) -> set[str]:
        self.report({self.level}, self.message)
        return {"FINISHED"}


class ACTANYWHERE_OT_apply_motion(bpy.types.Operator):
    """Key the active strip's transform (offset, scale, rotation) from a motion.json, so a
    background strip moves with the shot's camera; its first frame lands on the strip's first
    frame"""

    bl_idname = "actanywhere.apply_motion"
    bl_label = "Apply Motion"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context) -> bool:
        ed = compat.editor(context.scene)
        return ed is not None and ed.active_strip is not None

    def invoke(self, context, event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context) -> set[str]:
        settings = context.scene.actanywhere
        strip = compat.editor(context.scene).active_strip
        try:
            data = motion_file.read(bpy.path.abspath(self.filepath))
        except ValueError as exc:
            return _fail(self, settings, str(exc))
        keys = motion_file.blender_keys(data)
        start = int(strip.frame_final_start) - keys[0][0]
        tr = strip.transform
        for frame, x, y, scale, angle in keys:
            tr.offset_x, tr.offset_y, tr.rotation = x, y, angle
            tr.scale_x = tr.scale_y = scale
            for name in ("offset_x", "offset_y", "scale_x", "scale_y", "rotation"):
                tr.keyframe_insert(name, frame=frame + start)
        settings.status = (f"{strip.name}: {len(keys)} motion keys from "
                           f"{bpy.path.basename(self.filepath)} ({data.get('source', '?')})")
        self.report({"INFO"}, f"ActAnywhere: {settings.status}")
        return {"FINISHED"}


CLASSES = (ACTANYWHERE_OT_generate, ACTANYWHERE_OT_send_to_farm, ACTANYWHERE_OT_cancel,
           ACTANYWHERE_OT_load_strip, ACTANYWHERE_OT_remove_take, ACTANYWHERE_OT_refresh,
           ACTANYWHERE_OT_open_folder, ACTANYWHERE_OT_report, ACTANYWHERE_OT_apply_motion)
