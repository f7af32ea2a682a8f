"""Units (服务单位): the service hierarchy, stored as a materialised path."""
