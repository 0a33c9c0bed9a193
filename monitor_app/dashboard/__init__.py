"""The central-station web page: the ward, one patient's trends and the notifications.

Every script and style it uses is served from static/ (uPlot is vendored from npm, see
package.json), so the page works on a ward network without Internet access.
"""
