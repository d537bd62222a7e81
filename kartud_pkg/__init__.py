"""kartud: controller daemon for a KTP-el / KIA card printer station."""
