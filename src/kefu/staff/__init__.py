"""Staff: people of the service organisation, their unit and roles."""
