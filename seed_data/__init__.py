"""Data files (questionnaire templates, the demo province) and the demo response generator."""

from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent
QUESTIONNAIRE_DIR = SEED_DIR / "questionnaires"
PROVINCE_DIR = SEED_DIR / "province"
