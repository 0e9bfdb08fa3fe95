// The engine's record values are StreamValues' types; users of the engine get them with it.
@_exported import StreamValues
