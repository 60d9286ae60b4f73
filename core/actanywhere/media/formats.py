"""File-format names shared by the ShotSpec and the writers (standard library only)."""

#: OpenEXR compressions the writers accept (OpenImageIO's names)
COMPRESSIONS = ("zip", "zips", "piz", "dwaa", "dwab", "rle", "none")
