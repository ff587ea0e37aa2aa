"""Course bulk email for a Django LMS."""
