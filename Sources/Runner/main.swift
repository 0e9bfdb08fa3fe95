print("stream-engine")
