"""Outward views of the registry: the static catalog site and the organisation-wide
catalog on Apache Iceberg. They read every service and write only where they are told."""
