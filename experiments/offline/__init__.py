"""Personalizer's administration features on Tailor's own machinery: VW argument strings
read as learner settings (`vwargs`), offline evaluations (`evaluation`), feature
importance (`importance`), model and log administration (`admin`) and the background
jobs that compute evaluations and importances (`jobs`)."""
