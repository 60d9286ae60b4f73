"""The Sequencer sidebar's ActAnywhere tab, the take list, and the status-bar progress."""

from __future__ import annotations

import bpy

from . import compat, jobs, props
from .vendor.actanywhere.api import shotspec

ICONS = {"done": "CHECKMARK", "failed": "ERROR", "interrupted": "ERROR", "cancelled": "CANCEL",
         "running": "SORTTIME", "queued": "SORTTIME", "starting": "SORTTIME"}


class ACTANYWHERE_UL_takes(bpy.types.UIList):
    """The takes of the active strip's plate (all takes when no plate is active)."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_prop,
                  index=0, flt_flag=0) -> None:
        row = layout.row(align=True)
        row.label(text=item.name, icon=ICONS.get(item.status, "DOT"))
        farm = item.status == "queued" and item.folder not in jobs.RUNS
        row.label(text=(item.label or item.engine) + ("  queued on the farm" if farm else ""))
        row.label(text=item.created)
        strip = compat.strips_all(compat.editor(context.scene)).get(item.strip) \
            if item.strip and compat.editor(context.scene) else None
        row.label(text="", icon="SEQ_STRIP_DUPLICATE" if strip is not None else "BLANK1")

    def filter_items(self, context, data, propname):
        takes = getattr(data, propname)
        ed = compat.editor(context.scene)
        active = ed.active_strip if ed is not None else None
        plate = None
        if active is not None:
            plate = next((t.plate for t in takes if t.strip == active.name), active.name)
        flags = [self.bitflag_filter_item if plate is None or t.plate == plate else 0
                 for t in takes]
        return flags, []


class SEQUENCER_PT_actanywhere(bpy.types.Panel):
    bl_label = "ActAnywhere"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "ActAnywhere"

    def draw(self, context) -> None:
        layout, scene = self.layout, context.scene
        s = scene.actanywhere
        ed = compat.editor(scene)
        active = ed.active_strip if ed is not None else None
        layout.label(text=f"Plate: {active.name}" if active else "Plate: select an image strip",
                     icon="SEQUENCE")

        col = layout.column()
        col.prop(s, "background_source", expand=True)
        if s.background_source == "STRIP" and ed is not None:
            col.prop_search(s, "background_strip", ed, compat.strips_all_name(ed), text="")
        else:
            col.prop(s, "background_file", text="")

        col = layout.column()
        col.prop(s, "matte")
        if s.matte == "STRIP" and ed is not None:
            col.prop_search(s, "matte_strip", ed, compat.strips_all_name(ed), text="")
        elif s.matte == "KEYER":
            col.prop(s, "screen")
        elif props.matte_tracked(s.matte):
            if props.matte_texted(s.matte):
                col.prop(s, "matte_text")
            col.prop(s, "points")
            col.prop(s, "boxes")
            col.prop(s, "objects")
        if props.matte_sam(s.matte):
            col.prop(s, "sam_checkpoint")

        col = layout.column()
        col.prop(s, "engine")
        # what the chosen engine takes: its model folder, its settings (a prompt for vace)
        traits = next((t for t in shotspec.engines()[0] if t.name == s.engine), None)
        if traits is not None and traits.model:
            col.prop(s, "model")
        for name in shotspec.panel(s.engine):
            if hasattr(s, name):
                col.prop(s, name)
        col.prop(s, "motion")
        col.prop(s, "output_folder")
        col.operator("actanywhere.apply_motion", icon="TRACKING")

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("actanywhere.generate", icon="RENDER_ANIMATION")
        row.operator("actanywhere.cancel", icon="CANCEL")
        layout.operator("actanywhere.send_to_farm", icon="NETWORK_DRIVE")
        for run in jobs.running(scene=scene.name):
            entry = next((t for t in s.takes if t.folder == run.take.folder), None)
            if entry is not None:
                compat.progress(layout, entry.progress, f"{entry.name}: {entry.message}")
        if s.status:
            layout.label(text=s.status, icon="ERROR" if s.status.startswith("error") else "INFO")

        layout.label(text="Takes")
        layout.template_list("ACTANYWHERE_UL_takes", "", s, "takes", s, "take_index", rows=4)
        row = layout.row(align=True)
        row.operator("actanywhere.load_strip", icon="SEQ_STRIP_DUPLICATE")
        row.operator("actanywhere.remove_take", icon="REMOVE", text="")
        row.operator("actanywhere.refresh", icon="FILE_REFRESH", text="")
        row.operator("actanywhere.open_folder", icon="FILE_FOLDER", text="")
        if 0 <= s.take_index < len(s.takes):
            take = s.takes[s.take_index]
            box = layout.box()
            box.label(text=f"{take.name}: {take.status}  {take.label}")
            if "seed" in shotspec.panel(take.engine):
                box.label(text=f"seed {take.seed}")
            if take.message:
                box.label(text=take.message)
            box.label(text=take.folder)


def status_bar(self, context) -> None:
    """Running takes' progress in the status bar."""
    for run in jobs.running():
        scene, entry = jobs.item(run.scene, run.take.folder)
        if entry is not None:
            compat.progress(self.layout, entry.progress,
                            f"ActAnywhere {entry.name}: {entry.message}")


CLASSES = (ACTANYWHERE_UL_takes, SEQUENCER_PT_actanywhere)


def register() -> None:
    bpy.types.STATUSBAR_HT_header.append(status_bar)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(status_bar)
