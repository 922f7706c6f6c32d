"""The questionnaire designer (officer workspace): drafts, edits, previews, publication."""
