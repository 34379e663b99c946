"""Scoring: the level a text is read at, task presence, leakage, relevance, fluency; validation.

The scorer never imports a method: it cannot know who wrote a text.
"""
