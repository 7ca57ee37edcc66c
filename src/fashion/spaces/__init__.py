"""Search spaces: a base class, one module per space, the registry that names them, and the
networks, augmentation and schedules they are built from."""
