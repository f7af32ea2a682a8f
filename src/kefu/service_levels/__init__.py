"""Service levels (服务等级) 5A–1A: entitlements as versioned data.

Editing a level makes a new version; tickets keep the version they were opened under, so
their targets never change behind their back.
"""
