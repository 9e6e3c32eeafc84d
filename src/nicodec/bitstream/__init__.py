"""The .nic container: header, sections, checksum."""
