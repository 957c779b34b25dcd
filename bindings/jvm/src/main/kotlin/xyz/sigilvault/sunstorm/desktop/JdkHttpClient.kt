package xyz.sigilvault.sunstorm.desktop

import java.io.IOException
import java.net.ConnectException
import java.net.URI
import java.net.http.HttpConnectTimeoutException
import java.net.http.HttpTimeoutException
import java.time.Duration
import xyz.sigilvault.sunstorm.HttpClient
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.HttpMethod
import xyz.sigilvault.sunstorm.HttpRequest
import xyz.sigilvault.sunstorm.HttpResponse

/**
 * The core's [HttpClient] on the JDK's `java.net.http` (the Android shell uses
 * `HttpURLConnection`, iOS `URLSession`), keeping the contract of docs/embedding.md: the
 * JDK's TLS validation, no redirects (a 3xx is the answer), the request's own timeout, every
 * status returned as an answer, no connection as [HttpException.Offline], the deadline as
 * [HttpException.Timeout]. Thread-safe; one instance serves the whole core.
 */
class JdkHttpClient(
    connectTimeout: Duration = Duration.ofSeconds(5),
) : HttpClient {
    private val client = java.net.http.HttpClient.newBuilder()
        .followRedirects(java.net.http.HttpClient.Redirect.NEVER)
        .connectTimeout(connectTimeout)
        .build()

    override fun send(request: HttpRequest): HttpResponse {
        val uri = try {
            URI.create(request.url)
        } catch (e: IllegalArgumentException) {
            throw HttpException.Failed("not a URL: ${request.url}")
        }
        val builder = try {
            java.net.http.HttpRequest.newBuilder(uri).timeout(Duration.ofMillis(request.timeoutMs.toLong().coerceAtLeast(1)))
        } catch (e: IllegalArgumentException) {
            throw HttpException.Failed("cannot request ${request.url}: ${e.message}")
        }
        // The JDK sets these itself and refuses them from callers.
        request.headers.filter { it.name.lowercase() !in RESTRICTED }.forEach { builder.header(it.name, it.value) }
        when (request.method) {
            HttpMethod.GET -> builder.GET()
            HttpMethod.POST -> builder.POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(request.body))
        }
        return try {
            val resp = client.send(builder.build(), java.net.http.HttpResponse.BodyHandlers.ofByteArray())
            HttpResponse(status = resp.statusCode(), body = resp.body())
        } catch (e: HttpConnectTimeoutException) {
            throw HttpException.Offline("connect timed out: ${e.message}")
        } catch (e: HttpTimeoutException) {
            throw HttpException.Timeout()
        } catch (e: ConnectException) {
            throw HttpException.Offline(e.message ?: "connection refused")
        } catch (e: IOException) {
            throw HttpException.Failed(e.toString())
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw HttpException.Failed("interrupted")
        }
    }

    private companion object {
        val RESTRICTED = setOf("connection", "content-length", "host", "expect", "upgrade")
    }
}
