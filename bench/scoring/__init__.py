"""Scoring: Bloom level of a text, fluency, relevance, and their aggregates with intervals.

The scorer never imports a method: it cannot know who wrote a text.
"""
