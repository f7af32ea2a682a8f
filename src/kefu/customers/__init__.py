"""Customer archives (客户档案): customers, group trees, contacts and revenue records."""
