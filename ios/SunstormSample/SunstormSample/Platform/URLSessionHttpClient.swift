import Foundation
import Sunstorm

/// The core's `HttpClient` (every call to octane) on `URLSession`, so the system's TLS
/// validation, App Transport Security, proxies and VPNs apply.
///
/// Per the contract: redirects are **not** followed (a 3xx comes back as the answer), any
/// status (4xx/5xx included) is an `HttpResponse`, and the whole exchange, connection
/// included, is bounded by `timeoutMs` (the request's idle timeout, plus a deadline after
/// which the task is cancelled). Bodies over `maxBodyBytes` fail with `HttpError.Failed`.
/// No connection (offline, DNS, refused, TLS / certificate failure) is
/// `HttpError.Offline`, the deadline `HttpError.Timeout`, anything else `HttpError.Failed`.
///
/// The core calls `send` on its worker threads, possibly concurrently, and waits: each
/// call runs its own task and blocks its thread on a semaphore until done. Never call it
/// on the main thread. Headers carry request signatures, not secrets; nothing is logged.
final class URLSessionHttpClient: HttpClient, Sendable {
    /// Largest answer body accepted (4 MiB); octane's answers are a few KiB.
    static let defaultMaxBodyBytes = 4 * 1024 * 1024

    private let session: URLSession
    private let maxBodyBytes: Int

    /// An ephemeral session (no cookies, cache or credentials kept on disk) that fails at
    /// once when offline instead of waiting for connectivity.
    init(maxBodyBytes: Int = URLSessionHttpClient.defaultMaxBodyBytes) {
        let config = URLSessionConfiguration.ephemeral
        config.waitsForConnectivity = false
        config.httpShouldSetCookies = false
        config.httpCookieAcceptPolicy = .never
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.timeoutIntervalForResource = 120 // backstop; each request has its own deadline
        session = URLSession(configuration: config)
        self.maxBodyBytes = maxBodyBytes
    }

    deinit {
        session.finishTasksAndInvalidate()
    }

    func send(request: HttpRequest) throws -> HttpResponse {
        if Thread.isMainThread {
            throw HttpError.Failed(reason: "send must not be called on the main thread")
        }
        guard let url = URL(string: request.url),
              let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http" else {
            throw HttpError.Failed(reason: "malformed or unsupported URL")
        }
        let timeout = TimeInterval(max(request.timeoutMs, 1)) / 1000
        var req = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        switch request.method {
        case .get:
            req.httpMethod = "GET"
        case .post:
            req.httpMethod = "POST"
            req.httpBody = request.body
        }
        for header in request.headers {
            req.addValue(header.value, forHTTPHeaderField: header.name)
        }

        let exchange = Exchange(maxBodyBytes: maxBodyBytes)
        let task = session.dataTask(with: req)
        task.delegate = exchange // per-task delegate (iOS 15+): redirects, the body cap
        task.resume()
        if exchange.done.wait(timeout: .now() + timeout) == .timedOut {
            task.cancel()
            throw HttpError.Timeout
        }
        return try exchange.result()
    }

    /// One request's state, filled on the session's delegate queue, read by the waiting
    /// thread after `done` is signalled (the lock makes that hand-over explicit).
    private final class Exchange: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        private let maxBodyBytes: Int
        private let lock = NSLock()
        private var status: Int?
        private var body = Data()
        private var failure: HttpError?

        init(maxBodyBytes: Int) {
            self.maxBodyBytes = maxBodyBytes
        }

        func result() throws -> HttpResponse {
            lock.lock()
            defer { lock.unlock() }
            if let failure { throw failure }
            guard let status, let code = Int32(exactly: status) else {
                throw HttpError.Failed(reason: "no HTTP answer")
            }
            return HttpResponse(status: code, body: body)
        }

        private func fail(_ error: HttpError) {
            lock.lock()
            if failure == nil { failure = error }
            lock.unlock()
        }

        // Never follow a redirect: the 3xx itself becomes the answer.
        func urlSession(_ session: URLSession, task: URLSessionTask,
                        willPerformHTTPRedirection response: HTTPURLResponse, newRequest request: URLRequest,
                        completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
            completionHandler(nil)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
            guard let http = response as? HTTPURLResponse else {
                fail(.Failed(reason: "not an HTTP answer"))
                completionHandler(.cancel)
                return
            }
            if http.expectedContentLength > Int64(maxBodyBytes) {
                fail(.Failed(reason: "answer larger than \(maxBodyBytes) bytes"))
                completionHandler(.cancel)
                return
            }
            lock.lock()
            status = http.statusCode
            body = Data()
            lock.unlock()
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            lock.lock()
            let tooLarge = body.count + data.count > maxBodyBytes
            if tooLarge {
                if failure == nil { failure = .Failed(reason: "answer larger than \(maxBodyBytes) bytes") }
            } else {
                body.append(data)
            }
            lock.unlock()
            if tooLarge { dataTask.cancel() }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if let error { fail(Self.map(error)) }
            done.signal()
        }

        static func map(_ error: Error) -> HttpError {
            guard let e = error as? URLError else {
                return .Failed(reason: String(describing: type(of: error)))
            }
            switch e.code {
            case .timedOut:
                return .Timeout
            case .notConnectedToInternet, .cannotFindHost, .cannotConnectToHost, .networkConnectionLost,
                 .dnsLookupFailed, .secureConnectionFailed, .serverCertificateUntrusted,
                 .serverCertificateHasBadDate, .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot,
                 .internationalRoamingOff, .dataNotAllowed, .callIsActive:
                return .Offline(reason: "URLError \(e.code.rawValue)")
            default:
                return .Failed(reason: "URLError \(e.code.rawValue)")
            }
        }
    }
}
