// StreamEngine
