@echo off
rem StackFlow for Splunk: scripted input that re-sends spooled deliveries (Windows).
rem splunkd writes the session key on stdin (passAuth).
"%~dp0..\windows_x86_64\bin\stackflow.exe" spool flush %*
exit /b %ERRORLEVEL%
