"""The Textual user interface. Only this package imports textual; it reads the timeline model."""
