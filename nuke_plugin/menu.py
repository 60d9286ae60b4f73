# ActAnywhere for Nuke: the node in the Nodes toolbar (GUI sessions only). See docs/nuke.md.
try:
    import actanywhere_nuke.startup

    actanywhere_nuke.startup.menu()
except Exception as exc:  # noqa: BLE001
    print(f"ActAnywhere: menu not added ({exc}); see docs/nuke.md")
