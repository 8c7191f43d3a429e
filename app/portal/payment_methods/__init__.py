"""Payment methods: list, add a card, make default, remove."""
