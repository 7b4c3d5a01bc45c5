"""Small runnable examples built on fastnn (python -m fastnn.examples.<name>)."""
