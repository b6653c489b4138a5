"""Where a delivered notification goes next: the live stream, email (web push to come)."""
