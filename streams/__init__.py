"""Everything that moves events: log replay, the Faust app, and the sinks."""
