"""Voice profiles: the reference recordings that voices are cloned from."""
