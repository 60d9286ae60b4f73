# ActAnywhere for Nuke: runs in every Nuke session (GUI, nuke -t, farm). A failure prints one
# line and never stops Nuke starting. See docs/nuke.md.
try:
    import actanywhere_nuke.startup

    actanywhere_nuke.startup.init()
except Exception as exc:  # noqa: BLE001
    print(f"ActAnywhere: not loaded ({exc}); see docs/nuke.md")
