"""Image files, colour and pixels: what every floor above reads and writes."""
