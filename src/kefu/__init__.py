"""Kefu (客服): customer service for organisations with a hierarchy of units."""

__version__ = "0.1.0"
