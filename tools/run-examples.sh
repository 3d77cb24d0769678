#!/bin/sh
echo "examples not written yet"
