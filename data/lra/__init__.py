"""Long Range Arena: ListOps and Pathfinder generators, archive readers, the classification data module."""
